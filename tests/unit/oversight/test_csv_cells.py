"""Cells of the CSV export: text that a spreadsheet would run as a formula is kept as text."""

import pytest

from services.oversight.api.cases import cell


@pytest.mark.parametrize("text", ["=1+1", "+84903123456", "-2+3", "@SUM(A1:A9)", "\t=1+1", "\r=1+1"])
def test_text_that_would_start_a_formula_gets_a_leading_quote(text):
    assert cell(text) == "'" + text


@pytest.mark.parametrize("value", ["Gia đình 5 người đang cách ly, hết gạo.", "12 Nguyễn Văn Trỗi", "a=b", "", 3,
                                   True])
def test_other_values_are_unchanged(value):
    assert cell(value) == value


def test_nothing_is_an_empty_cell():
    assert cell(None) == ""


@pytest.mark.parametrize(("text", "kept"), [
    ("Xin hỗ trợ;=HYPERLINK(\"x\")", "Xin hỗ trợ;'=HYPERLINK(\"x\")"), (";=1+1", ";'=1+1"), ("=a;=b", "'=a;'=b"),
    ("gạo,+thuốc", "gạo,'+thuốc"), ("Quận 1, -5 độ", "Quận 1, -5 độ"),
])
def test_a_formula_after_a_separator_inside_the_text_is_kept_as_text(text, kept):
    # A spreadsheet splitting at ";" (or "," or tab), quotes or not, made the rest a cell of its own.
    assert cell(text) == kept

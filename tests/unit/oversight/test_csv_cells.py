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

"""Ids and tracking codes: retries agree, and a mistyped code is caught."""

import uuid

from hypothesis import given, strategies as st

from contracts import ids


def test_the_same_channel_key_gives_the_same_ids_and_code():
    a, b = ids.request_id("web", "k-1"), ids.request_id("web", "k-1")
    assert a == b and ids.case_id(a) == ids.case_id(b) and ids.tracking_code(a) == ids.tracking_code(b)
    assert ids.request_id("zalo", "k-1") != a  # keys are per channel


def test_a_code_reads_back_however_it_is_typed():
    code = ids.tracking_code(ids.request_id("phone", "call-42"))
    assert len(code) == 11 and code[5] == "-"
    typed = code.lower().replace("-", " ").replace("0", "o").replace("1", "l")
    assert ids.normalise_tracking_code(typed) == code


def test_a_code_copied_from_a_message_or_a_pdf_reads_back():
    """A receipt's code pasted from an SMS, a PDF or a phone's full-width keyboard carries another
    dash, a dot or an invisible character: the citizen's lookup still finds the request."""
    code = ids.tracking_code(ids.request_id("web", "k-7"))
    full_width = "".join(chr(ord(c) + 0xFEE0) for c in code)  # "－" for "-" too
    for copied in (code.replace("-", "\u2013"), code.replace("-", "\u2011"), code.replace("-", "\u200b"),
                   code.replace("-", "."), f"\ufeff{code}\n", full_width):
        assert ids.normalise_tracking_code(copied) == code, copied
    assert ids.normalise_tracking_code(code.replace("-", "+")) is None


@given(st.text(alphabet="abcdefghijklmnop0123456789", min_size=1, max_size=30), st.integers(0, 9), st.integers(1, 31))
def test_any_single_mistyped_character_is_caught(key, position, shift):
    code = ids.tracking_code(ids.request_id("web", key)).replace("-", "")
    wrong = ids.ALPHABET[(ids.ALPHABET.index(code[position]) + shift) % 32]
    typo = code[:position] + wrong + code[position + 1:]
    assert ids.normalise_tracking_code(typo) is None


def test_garbage_is_not_a_code():
    assert ids.normalise_tracking_code("") is None
    assert ids.normalise_tracking_code("HELLO-WORLD-TOO-LONG") is None


def test_a_reporters_key_is_the_same_for_one_phone_and_cannot_be_undone_without_intakes_key():
    """The key goes into every trace of the request; a plain hash of a phone number was undone by
    trying every number. One phone's reports still share a key, so they meet in one router."""
    case_a, case_b = ids.case_id(ids.request_id("web", "a")), ids.case_id(ids.request_id("web", "b"))
    phone = "+84903123456"
    mine = ids.report_key(phone, case_a, b"intake's key")
    assert mine == ids.report_key(phone, case_b, b"intake's key"), "one phone, one partition"
    assert mine != ids.report_key(phone, case_a, b"another key")
    assert mine != ids.report_key("+84903123457", case_a, b"intake's key")
    assert mine != str(uuid.uuid5(ids.NAMESPACE, f"reporter:{phone}")).encode(), "what anyone could compute"
    assert ids.report_key(None, case_a, b"intake's key") == str(case_a).encode()

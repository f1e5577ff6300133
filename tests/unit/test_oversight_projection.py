"""The audit chain and the masking rules, without a database."""

from services.oversight.api import mask_name, mask_phone
from services.oversight.projection import GENESIS, canonical, chain_hash


def test_the_chain_depends_on_every_record_and_its_order():
    a, b = canonical({"event_id": "1", "x": "á"}), canonical({"x": "b", "event_id": "2"})
    head = chain_hash(chain_hash(GENESIS, a), b)
    assert head != chain_hash(chain_hash(GENESIS, b), a)
    assert head != chain_hash(chain_hash(GENESIS, canonical({"event_id": "1", "x": "a"})), b)
    assert canonical({"b": 1, "a": 2}) == canonical({"a": 2, "b": 1})


def test_masking_hides_who_but_keeps_cases_apart():
    assert mask_name("Nguyễn Thị Hoa") == "N. T. H***"
    assert mask_phone("+84903123456") == "+849*****456"

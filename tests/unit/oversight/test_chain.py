"""The audit chain: what it covers, what it leaves out, and how a check names the first broken record."""

from services.oversight.chain import MASKED, GENESIS, ChainWalk, audited, audited_text, canonical, chain_hash, matches
from services.oversight.masking import CONTACTS, PHONES_FIRST_AND_LAST


def chain(texts):
    records, head = [], GENESIS
    for seq, text in enumerate(texts, 1):
        records.append([seq, f"event-{seq}", text, head, chain_hash(head, text)])
        head = records[-1][4]
    return records


def test_the_chain_depends_on_every_record_and_its_order():
    a, b = canonical({"event_id": "1", "x": "á"}), canonical({"x": "b", "event_id": "2"})
    head = chain_hash(chain_hash(GENESIS, a), b)
    assert head != chain_hash(chain_hash(GENESIS, b), a)
    assert head != chain_hash(chain_hash(GENESIS, canonical({"event_id": "1", "x": "a"})), b)
    assert canonical({"b": 1, "a": 2}) == canonical({"a": 2, "b": 1})


def test_the_audited_text_holds_a_keyed_digest_instead_of_the_citizen():
    event = {"event_id": "1", "citizen": {"full_name": "Nguyễn Thị Hoa", "phone": "+84903123456"}, "address": "12 Lê Lợi"}
    text = audited_text(event, b"key")
    assert "Hoa" not in text and "903" not in text and "12 Lê Lợi" in text
    assert audited(event, b"key") != audited(event, b"another key")
    changed = {**event, "citizen": {"full_name": "Nguyễn Thị Hoa", "phone": "+84903123457"}}
    assert audited_text(changed, b"key") != text
    assert audited({"event_id": "2", "recipient": "citizen"}, b"key") == {"event_id": "2", "recipient": "citizen"}


def test_a_sound_chain_walks_to_its_head_and_keeps_the_hashes_asked_for():
    records = chain([canonical({"n": n}) for n in range(5)])
    walk = ChainWalk(hashes_at={3})
    assert all(walk.step(*r) for r in records)
    assert (walk.seq, walk.head, walk.broken) == (5, records[-1][4], None)
    assert walk.hashes == {3: records[2][4]}


def test_an_altered_record_is_named():
    records = chain([canonical({"n": n}) for n in range(5)])
    records[2][2] = canonical({"n": 99})
    walk = ChainWalk()
    assert not all(walk.step(*r) for r in records)
    assert walk.broken.seq == 3 and walk.broken.event_id == "event-3" and "altered" in walk.broken.reason


def test_a_record_rewritten_with_its_hash_breaks_the_next_link():
    records = chain([canonical({"n": n}) for n in range(5)])
    records[1][2] = canonical({"n": 99})
    records[1][4] = chain_hash(records[1][3], records[1][2])
    walk = ChainWalk()
    for r in records:
        walk.step(*r)
    assert walk.broken.seq == 3 and "previous hash" in walk.broken.reason


def test_a_removed_record_is_named_by_its_number():
    records = chain([canonical({"n": n}) for n in range(5)])
    del records[1]
    walk = ChainWalk()
    for r in records:
        walk.step(*r)
    assert walk.broken.seq == 2 and "missing" in walk.broken.reason


WRITTEN = {"event_id": "3", "event_type": "CaseOpened", "citizen": {"full_name": "Lê Văn Nam", "phone": "+84903123456"},
           "description": "Nhà chị Lan hết gạo, gọi 0903 123 456 hoặc 028.3822.1234", "address": "12 Lê Lợi, Quận 1"}


def test_the_masked_form_keeps_the_text_but_not_the_phone_numbers_in_it():
    text = audited_text(WRITTEN, b"key", masked=True)
    record = audited(WRITTEN, b"key", masked=True)
    assert "123 456" not in text and "3822" not in text and "Nhà chị Lan hết gạo, gọi 090" in text
    assert "12 Lê Lợi, Quận 1" in text and "address" not in record[MASKED]  # nothing in it to mask
    assert set(record[MASKED]) == {"description"}
    assert matches(WRITTEN, record, b"key")
    assert not matches(WRITTEN, record, b"another key")
    # Text with no number in it is the same in both forms: the records of the two forms chain alike.
    plain = {**WRITTEN, "description": "Nhà chị Lan hết gạo"}
    assert audited_text(plain, b"key", masked=True) == audited_text(plain, b"key")


def test_a_record_is_checked_in_the_form_it_was_made_in():
    before = audited(WRITTEN, b"key")  # a record made before the trail masked
    assert "0903 123 456" in before["description"] and matches(WRITTEN, before, b"key")
    assert not matches({**WRITTEN, "description": "Nhà chị Lan hết gạo"}, before, b"key")


def test_an_altered_text_behind_a_masked_record_is_found():
    record = audited(WRITTEN, b"key", masked=True)
    # The number changed where the record shows stars: only the digest of the text as written tells.
    other_number = {**WRITTEN, "description": WRITTEN["description"].replace("123 456", "923 456")}
    assert audited(other_number, b"key", masked=True)["description"] == record["description"]
    assert not matches(other_number, record, b"key")
    assert not matches({**WRITTEN, "address": "14 Lê Lợi, Quận 1"}, record, b"key")
    # A masked text that is not the text with digits starred, though its digest is the text's.
    assert not matches(WRITTEN, {**record, "description": record["description"].replace("gạo", "***")}, b"key")
    # A digest under a field that is not free text.
    digests = {**record[MASKED], "event_type": "0" * 64}
    assert not matches(WRITTEN, {**record, MASKED: digests}, b"key")


def test_an_event_carrying_the_digest_field_itself_is_recorded_as_written_and_checked_so():
    """The form is read from the record, so a body's own field of that name must not choose it:
    added to a masked record's stored event, it was accepted."""
    own = {**WRITTEN, MASKED: {"description": "0" * 64}}
    record = audited(own, b"key", masked=True)
    assert record["description"] == WRITTEN["description"] and matches(own, record, b"key")
    masked = audited(WRITTEN, b"key", masked=True)
    assert not matches({**WRITTEN, MASKED: masked[MASKED]}, masked, b"key")


def test_a_numbers_extension_is_masked_with_it_and_the_record_checks():
    event = {**WRITTEN, "description": "gọi 0903 123 456 ext. 1234"}
    assert matches(event, audited(event, b"key", masked=True), b"key")


def test_a_record_of_the_contacts_form_hides_e_mail_addresses_too_and_checks():
    event = {**WRITTEN, "description": "Gọi 0903 123 456 hoặc gửi thư hoa.nguyen@gmail.com"}
    record = audited(event, b"key", masked=CONTACTS)
    assert record["description"] == "Gọi **** *** 456 hoặc gửi thư h*********@gmail.com"
    assert matches(event, record, b"key")
    # Stars only where a contact can be: not over the words around it, nor over an address's domain.
    for altered in ("G** **** *** 456 hoặc gửi thư h*********@gmail.com",
                    "Gọi **** *** 456 hoặc gửi thư h*********@*****.com"):
        assert not matches(event, {**record, "description": altered}, b"key")
    # The first form's record of the same event, made before the cut-over, still checks.
    assert matches(event, audited(event, b"key", masked=PHONES_FIRST_AND_LAST), b"key")

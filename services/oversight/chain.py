"""The audit chain (chuỗi kiểm toán), pure: what text of an event is audited, how records are
chained, and how a chain is checked.

Each record hashes the previous record's hash and the event's canonical text (SHA-256). The audited
text holds none of the citizen's contact details: the contact is replaced by a keyed digest
(HMAC-SHA256 with ``OVERSIGHT_AUDIT_KEY``), so the same records can be handed to HĐND and MTTQ, who
recompute every hash themselves, while the 1022 centre can still prove that a case's contact details
were not changed.

The free text (a description, an address, a unit's note) is kept as written, but for the contacts
written into it ("gọi chị Lan 0903 123 456", an e-mail address), which are masked as the API masks
them for HĐND and MTTQ. The text as written is bound by its keyed digest, by field, under
``masked_text_hmac``. Records made before oversight masked them (up to ``audit_form.masked_since``)
keep their text, and records made before it masked e-mail addresses and showed only a number's
last digits (up to ``audit_form.contacts_since``) their first masked form (masking.py), or the
checkpoints HĐND and MTTQ kept would no longer match: a record is checked in the form it has.
"""

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

import orjson

from services.oversight.masking import FREE_TEXT, mask_contacts_in, maskable

GENESIS = "0" * 64
PERSONAL_FIELD = "citizen"
MASKED = "masked_text_hmac"


def canonical(body: dict[str, Any]) -> str:
    """The one text of an event that its hash covers: JSON with sorted keys, no spaces, UTF-8 as is.

    Verifiers hash the stored text itself; they never need to make it again from the event."""
    return orjson.dumps(body, option=orjson.OPT_SORT_KEYS).decode()


def chain_hash(prev_hash: str, canonical_text: str) -> str:
    """Each record hashes the previous hash and the canonical event (SHA-256, hex)."""
    return hashlib.sha256((prev_hash + "\n" + canonical_text).encode("utf-8")).hexdigest()


def _digest(key: bytes, text: str) -> str:
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).hexdigest()


def audited(body: dict[str, Any], key: bytes, masked: int = 0) -> dict[str, Any]:
    """The event as the audit log keeps it: the citizen's contact replaced by its keyed digest and,
    when ``masked`` (a form of masking.py), the contacts in its free text masked, each such text's
    digest beside it."""
    citizen = body.get(PERSONAL_FIELD)
    out = body if citizen is None else {**body, PERSONAL_FIELD: {"hmac_sha256": _digest(key, canonical(citizen))}}
    if not masked or MASKED in body:  # a producer's field of that name: its record says which form it is not
        return out
    digests, shown = {}, {}
    for field in FREE_TEXT:
        if isinstance(written := out.get(field), str) and (hidden := mask_contacts_in(written, masked)) != written:
            shown[field], digests[field] = hidden, _digest(key, written)
    return {**out, **shown, MASKED: digests} if digests else out


def audited_text(body: dict[str, Any], key: bytes, masked: int = 0) -> str:
    return canonical(audited(body, key, masked))


def matches(body: dict[str, Any], record: dict[str, Any], key: bytes) -> bool:
    """Whether ``record`` (an audit record's text, parsed) is what ``body`` was audited as, in the
    form the record has. A masked text is the text as written with some digits starred, and that
    text is checked by its digest; which digits is not read again, since a later phonenumbers may
    read a number otherwise."""
    digests = record.get(MASKED)
    if digests is None or MASKED in body:
        return audited(body, key) == record
    if not isinstance(digests, dict) or not digests:
        return False
    expected = dict(audited(body, key))
    for field, digest in digests.items():
        written = body.get(field)
        shown = record.get(field)
        if not (field in FREE_TEXT and isinstance(written, str) and isinstance(digest, str)
                and isinstance(shown, str) and _starred(written, shown)
                and hmac.compare_digest(_digest(key, written), digest)):
            return False
        expected[field] = shown
    return {**expected, MASKED: digests} == record


def _starred(written: str, shown: str) -> bool:
    """``shown`` is ``written`` with digits, or characters of an e-mail address's local part, and
    only those, replaced by "*". Which of them is not checked: a number's extension is masked with it
    ("0903 123 456 ext. 1234"), and the text as written is bound by its digest whatever the record
    shows of it."""
    if len(written) != len(shown):
        return False
    starred = [i for i, (w, s) in enumerate(zip(written, shown)) if w != s]
    return all(shown[i] == "*" for i in starred) and (not starred or set(starred) <= maskable(written))


@dataclass(frozen=True)
class Break:
    """The first record where the chain or the data behind it is not what was recorded."""

    seq: int
    event_id: str | None
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "event_id": self.event_id, "reason": self.reason}


class ChainWalk:
    """Recomputes a chain record by record, from the genesis hash; stops at the first break.

    ``hashes_at`` collects the recomputed hash at the given sequence numbers (checkpoints)."""

    def __init__(self, hashes_at: set[int] | None = None):
        self.seq = 0
        self.head = GENESIS
        self.broken: Break | None = None
        self.wanted = hashes_at or set()
        self.hashes: dict[int, str] = {}

    def step(self, seq: int, event_id: str, text: str, prev_hash: str, stored_hash: str) -> bool:
        """Take the next record; False (and ``broken`` set) when it does not chain."""
        if self.broken:
            return False
        if seq != self.seq + 1:
            return self.fail(self.seq + 1, None, f"record {self.seq + 1} is missing (next is {seq})")
        if prev_hash != self.head:
            return self.fail(seq, event_id, "its previous hash is not the hash of the record before it")
        recomputed = chain_hash(self.head, text)
        if recomputed != stored_hash:
            return self.fail(seq, event_id, "its content does not match its hash (the record was altered)")
        self.seq, self.head = seq, recomputed
        if seq in self.wanted:
            self.hashes[seq] = recomputed
        return True

    def fail(self, seq: int, event_id: str | None, reason: str) -> bool:
        self.broken = Break(seq, event_id, reason)
        return False

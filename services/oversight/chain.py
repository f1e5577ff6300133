"""The audit chain (chuỗi kiểm toán), pure: what text of an event is audited, how records are
chained, and how a chain is checked.

Each record hashes the previous record's hash and the event's canonical text (SHA-256). The audited
text holds none of the citizen's contact details (what they write, a description or an address, is
as written): the contact is replaced by a keyed digest (HMAC-SHA256 with
``OVERSIGHT_AUDIT_KEY``), so the same records can be handed to HĐND and MTTQ, who recompute every
hash themselves, while the 1022 centre can still prove that a case's contact details were not changed.
"""

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

import orjson

GENESIS = "0" * 64
PERSONAL_FIELD = "citizen"


def canonical(body: dict[str, Any]) -> str:
    """The one text of an event that its hash covers: JSON with sorted keys, no spaces, UTF-8 as is.

    Verifiers hash the stored text itself; they never need to make it again from the event."""
    return orjson.dumps(body, option=orjson.OPT_SORT_KEYS).decode()


def chain_hash(prev_hash: str, canonical_text: str) -> str:
    """Each record hashes the previous hash and the canonical event (SHA-256, hex)."""
    return hashlib.sha256((prev_hash + "\n" + canonical_text).encode("utf-8")).hexdigest()


def audited(body: dict[str, Any], key: bytes) -> dict[str, Any]:
    """The event as the audit log keeps it: the citizen's contact replaced by its keyed digest."""
    citizen = body.get(PERSONAL_FIELD)
    if citizen is None:
        return body
    digest = hmac.new(key, canonical(citizen).encode("utf-8"), hashlib.sha256).hexdigest()
    return {**body, PERSONAL_FIELD: {"hmac_sha256": digest}}


def audited_text(body: dict[str, Any], key: bytes) -> str:
    return canonical(audited(body, key))


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

"""Deterministic ids and tracking codes.

A request's ids come from the channel's own key (Zalo ``msg_id``, phone ``call_id``, the web and app
``Idempotency-Key``), so a retry anywhere yields the same ``request_id``, ``case_id`` and tracking code.

The tracking code (mã tra cứu) is read out over the phone: ten characters of Crockford base32
(no I, L, O, U), in two groups of five, the last a Luhn mod 32 check character that catches any
single mistyped character and almost every swap of two neighbours. Its 45 bits make two requests
sharing a code likely over a hotline's life, so intake gives a code only when no other request holds
it, trying the request's next codes in order (``tracking_code(request, attempt)``) until one is free,
and keeps the one it gave: the code of record is in intake's receipt and in RequestReceived, and
nothing else should derive it from the request id. Codes are keyed with a secret of intake's, so
nobody else can: knowing a request's channel key does not give its code.
"""

import hashlib
import hmac
import unicodedata
import uuid

NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:vn:hcmc:1022")
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_INDEX = {c: i for i, c in enumerate(ALPHABET)}
_ALIASES = str.maketrans({"O": "0", "I": "1", "L": "1", "U": "V"})
CODE_DATA_CHARS = 9


def request_id(channel: str, channel_key: str) -> uuid.UUID:
    """The request id for a channel's message key: the same key always gives the same id."""
    return uuid.uuid5(NAMESPACE, f"request:{channel}:{channel_key}")


def case_id(request: uuid.UUID) -> uuid.UUID:
    """The id of the case a request opens."""
    return uuid.uuid5(NAMESPACE, f"case:{request}")


def report_key(phone: str | None, case: uuid.UUID, key: bytes) -> bytes:
    """The key a request is published under on ``intake.requests``. Every report from one phone has
    the same key, so they meet in one partition and so in one router, in order: a repeat report is
    recognised there even before the first has reached the ledger the routers share. An HMAC of the
    number under intake's ``key``: the key goes into every trace of the request (the Kafka spans'
    ``messaging.kafka.message.key``), and a plain hash of a phone number is undone by trying every
    number, in minutes. A report without a phone is keyed by its case."""
    if not phone:
        return str(case).encode()
    digest = hmac.new(key, f"reporter:{phone}".encode(), hashlib.sha256).digest()
    return str(uuid.UUID(bytes=digest[:16])).encode()


def event_id(*parts: object) -> uuid.UUID:
    """A stable event id from what caused it, so that a replay re-emits the same id."""
    return uuid.uuid5(NAMESPACE, "event:" + ":".join(str(p) for p in parts))


def _check_char(data: str) -> str:
    """Luhn mod N check character over ``data`` (N = 32)."""
    n = len(ALPHABET)
    total, factor = 0, 2
    for ch in reversed(data):
        addend = factor * _INDEX[ch]
        addend = addend // n + addend % n
        total += addend
        factor = 1 if factor == 2 else 2
    return ALPHABET[(n - total % n) % n]


def tracking_code(request: uuid.UUID, attempt: int = 0, key: bytes = b"") -> str:
    """The tracking code of a request, e.g. ``7K3MQ-9PDX4``; ``attempt`` n > 0 gives the request's
    n-th other code, for when the ones before it are held by other requests.

    Intake passes its ``key`` (``INTAKE_TRACKING_CODE_KEY``): the code is then an HMAC of the request
    id under it. Anyone who knows the channel's key (a call id, an ``Idempotency-Key``) can compute
    the request id, but only intake can say which code the request has. Without a key the code is
    the request id's first bits, as it was before intake had one; codes given that way stay in the
    receipts."""
    if key:
        digest = hmac.new(key, f"tracking-code:{request}:{attempt}".encode(), hashlib.sha256).digest()
        value = int.from_bytes(digest[:8], "big") >> (64 - 5 * CODE_DATA_CHARS)
    else:
        source = request if attempt == 0 else uuid.uuid5(NAMESPACE, f"tracking-code:{request}:{attempt}")
        value = source.int >> (128 - 5 * CODE_DATA_CHARS)
    data = "".join(ALPHABET[(value >> (5 * i)) & 31] for i in reversed(range(CODE_DATA_CHARS)))
    code = data + _check_char(data)
    return f"{code[:5]}-{code[5:]}"


def normalise_tracking_code(text: str) -> str | None:
    """The canonical form of a typed tracking code, or None when it is not a valid one.

    Case, spaces, dashes and dots do not matter; O, I, L and U are read as 0, 1, 1 and V. A code
    copied from a message, a PDF or a phone's keyboard is read too: full-width letters, any dash
    (en dash, non-breaking hyphen) and the invisible characters a copy carries (zero-width space).
    """
    folded = unicodedata.normalize("NFKC", text[:100])
    raw = "".join(c for c in folded if not (c.isspace() or c in "._" or unicodedata.category(c) in ("Pd", "Cf")))
    raw = raw.upper().translate(_ALIASES)
    if len(raw) != CODE_DATA_CHARS + 1 or any(c not in _INDEX for c in raw):
        return None
    if _check_char(raw[:-1]) != raw[-1]:
        return None
    return f"{raw[:5]}-{raw[5:]}"

"""Oversight's PostgreSQL schema, and the role the API reads through.

The read models (``cases``, ``case_events``, ``deliveries``), the audit chain (``audit_log``, its
``audit_head`` and ``audit_checkpoints``) and the consumer position (``consumer_offsets``) live in
one schema, so one transaction changes them together. The rebuild makes the same tables in a schema
of its own by running :data:`SCHEMA` with another ``search_path``.
"""

import base64
import hashlib
import hmac
import secrets

import asyncpg

from contracts.postgres import add_column
from services.oversight.chain import GENESIS
from services.oversight.projection import CASE_COLUMNS, DUE_BY, OPEN_STATUSES

_CASE_DEFAULTS = {"is_public": "NOT NULL DEFAULT false", "duplicates": "NOT NULL DEFAULT 0", "status": "NOT NULL",
                  "version": "NOT NULL", "tracking_code": "NOT NULL", "case_id": "PRIMARY KEY",
                  "updated_at": "NOT NULL"}
_OPEN = "(" + ", ".join(f"'{s}'" for s in OPEN_STATUSES) + ")"



# The fold the rows were made by (projection.FOLD_VERSION), and whether all of them are yet;
# refold.py folds them again when it changes.
PROJECTION_STATE = f"""
CREATE TABLE IF NOT EXISTS projection_state (id int PRIMARY KEY CHECK (id = 1), fold_version int NOT NULL);
{add_column("projection_state", "complete", "boolean NOT NULL DEFAULT true")}
"""

SCHEMA = f"""
-- Where the projection stands in each partition, and where it began there (the rebuild replays from it).
CREATE TABLE IF NOT EXISTS consumer_offsets (
    topic text NOT NULL, partition int NOT NULL, next_offset bigint NOT NULL, first_offset bigint,
    PRIMARY KEY (topic, partition));
{add_column("consumer_offsets", "first_offset", "bigint")}
-- Rows from before the column: the projection read those partitions from their first records (its
-- group starts at the earliest), which is where the rebuild begins them too. Left empty, the two
-- differed in this column for good, and a rebuild never reported the read models equal.
UPDATE consumer_offsets SET first_offset = 0 WHERE first_offset IS NULL;
CREATE TABLE IF NOT EXISTS cases ({", ".join(f"{c} {t} {_CASE_DEFAULTS.get(c, '')}".strip() for c, t in CASE_COLUMNS.items())});
-- Lists walk an index in their order (newest first, case id breaking ties); the selective filters
-- (unit, area) have their own. Every index costs each update of a case, so there are few.
-- Not unique: an older intake gave a few codes to more than one request, and those are on Kafka for
-- good. Unique, the second such case failed its batch at every reading and stopped the projection.
-- Looked up first: ALTER TABLE locks the table against every read before it checks, on every start.
CREATE INDEX IF NOT EXISTS cases_tracking_code ON cases (tracking_code);
DO $$ BEGIN
    IF EXISTS (SELECT FROM pg_constraint
               WHERE conrelid = 'cases'::regclass AND conname = 'cases_tracking_code_key') THEN
        ALTER TABLE cases DROP CONSTRAINT cases_tracking_code_key;
    END IF;
END $$;
CREATE INDEX IF NOT EXISTS cases_received ON cases (received_at DESC, case_id DESC);
CREATE INDEX IF NOT EXISTS cases_unit ON cases (unit_id, received_at DESC, case_id DESC);
CREATE INDEX IF NOT EXISTS cases_area ON cases (area_code, received_at DESC, case_id DESC);
-- The open cases by when they are due (a case in triage is due to the centre). The index by the
-- result deadline alone, which no list of this version reads, is kept for oversights of the version
-- before, while both run: dropping it locks the table against every read until the migration ends.
CREATE INDEX IF NOT EXISTS cases_open_due ON cases (({DUE_BY}), case_id) WHERE status IN {_OPEN};
CREATE INDEX IF NOT EXISTS cases_open_deadline ON cases (resolve_by, case_id) WHERE status IN {_OPEN};
CREATE INDEX IF NOT EXISTS cases_public ON cases (received_at DESC, case_id DESC) WHERE is_public;
CREATE TABLE IF NOT EXISTS case_events (
    event_id uuid PRIMARY KEY, case_id uuid NOT NULL, version int, event_type text NOT NULL,
    occurred_at timestamptz NOT NULL, producer text, body jsonb NOT NULL);
CREATE INDEX IF NOT EXISTS case_events_case ON case_events (case_id, version);
CREATE TABLE IF NOT EXISTS deliveries (
    delivery_id uuid PRIMARY KEY, event_id uuid NOT NULL UNIQUE, case_id uuid NOT NULL, cause_event_id uuid,
    recipient text, channel text, outcome text, attempts int, error text, occurred_at timestamptz, body jsonb,
    template text);
{add_column("deliveries", "body", "jsonb")}
{add_column("deliveries", "template", "text")}
-- Rows kept before the column was: verify checks it against the body, as the API shows it.
UPDATE deliveries SET template = body->>'template' WHERE template IS NULL AND body->>'template' IS NOT NULL;
CREATE INDEX IF NOT EXISTS deliveries_case ON deliveries (case_id);
-- A unit's corrected address (CaseDeclined, since 2026-12-04) projected by an oversight that did not
-- know the field yet: the case's address is its last correction, as the fold makes it.
UPDATE cases c SET address = d.corrected FROM (
    SELECT DISTINCT ON (case_id) case_id, body->>'corrected_address' AS corrected FROM case_events
    WHERE event_type = 'CaseDeclined' AND body->>'corrected_address' IS NOT NULL ORDER BY case_id, version DESC) d
WHERE c.case_id = d.case_id AND c.address IS DISTINCT FROM d.corrected;
{PROJECTION_STATE}
CREATE TABLE IF NOT EXISTS audit_log (
    seq bigint PRIMARY KEY, event_id uuid NOT NULL UNIQUE, event_type text NOT NULL, case_id uuid,
    occurred_at timestamptz NOT NULL, canonical text NOT NULL, prev_hash text NOT NULL, hash text NOT NULL);
CREATE TABLE IF NOT EXISTS audit_head (
    id int PRIMARY KEY CHECK (id = 1), seq bigint NOT NULL, hash text NOT NULL);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '{GENESIS}') ON CONFLICT DO NOTHING;
-- Since when the trail masks the phone numbers in free text (chain.py): events that occurred from
-- then on. NULL: from the first record (a trail begun by an oversight that masks). The records of a
-- trail begun before keep their text as written, and the checkpoints kept of them still match.
CREATE TABLE IF NOT EXISTS audit_form (id int PRIMARY KEY CHECK (id = 1), masked_since timestamptz);
INSERT INTO audit_form (id, masked_since)
    SELECT 1, CASE WHEN EXISTS (SELECT FROM audit_log) THEN now() END ON CONFLICT DO NOTHING;
-- Since when it masks e-mail addresses too, and shows only a number's last digits (masking.CONTACTS):
-- '-infinity' from the first record (a trail begun by an oversight that does); the records of a
-- trail begun before keep the form they were made in.
{add_column("audit_form", "contacts_since", "timestamptz")}
UPDATE audit_form SET contacts_since = CASE WHEN EXISTS (SELECT FROM audit_log) THEN now() ELSE '-infinity' END
    WHERE contacts_since IS NULL;
-- The head at intervals, for HĐND and MTTQ to keep: a later chain must pass through every one.
CREATE TABLE IF NOT EXISTS audit_checkpoints (
    seq bigint PRIMARY KEY, hash text NOT NULL, made_at timestamptz NOT NULL DEFAULT now(),
    published boolean NOT NULL DEFAULT false);
"""

READ_TABLES = ("cases", "case_events", "deliveries", "audit_log", "audit_head", "audit_checkpoints")
# Serialises migrations of one database: instances starting together would otherwise race on GRANT.
MIGRATION_LOCK = 1022_0003


async def migrate(conn: asyncpg.Connection, reader_role: str, reader_password: str = "") -> None:
    """Create the tables, and a role that may SELECT them and nothing else (the API's), given
    ``reader_password`` if it makes the role (main.py gives it again should the role not log in with it)."""
    if await _ensure_role(conn, reader_role) and reader_password:
        await set_password(conn, reader_role, reader_password)
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
        await create_tables(conn)
        db = await conn.fetchval("SELECT current_database()")
        await conn.execute(f'GRANT CONNECT ON DATABASE "{db}" TO "{reader_role}"')
        await grant_reader(conn, reader_role)


async def create_tables(conn: asyncpg.Connection) -> None:
    """The tables in the connection's current schema; a column added to the read model later is
    added to a table made before it (empty until a rebuild fills it)."""
    await conn.execute(SCHEMA)
    have = {r[0] for r in await conn.fetch(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema()"
        " AND table_name = 'cases'")}
    for column, kind in CASE_COLUMNS.items():
        if column not in have:
            await conn.execute(f"ALTER TABLE cases ADD COLUMN {column} {kind}")


async def grant_reader(conn: asyncpg.Connection, reader_role: str, schema: str = "public") -> None:
    """The reader may use ``schema`` and SELECT what the API serves; everything else is revoked."""
    await conn.execute(f'GRANT USAGE ON SCHEMA "{schema}" TO "{reader_role}"')
    await conn.execute(f'REVOKE ALL ON ALL TABLES IN SCHEMA "{schema}" FROM "{reader_role}"')
    await conn.execute(f'REVOKE CREATE ON SCHEMA "{schema}" FROM "{reader_role}"')
    await conn.execute(f'GRANT SELECT ON {", ".join(f"{schema}.{t}" for t in READ_TABLES)} TO "{reader_role}"')


async def _ensure_role(conn: asyncpg.Connection, role: str) -> bool:
    """Whether this call made the role. Roles are cluster-wide: another database's oversight may be
    creating it at the same moment."""
    if await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role):
        return False
    try:
        await conn.execute(f'CREATE ROLE "{role}" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE')
    except (asyncpg.DuplicateObjectError, asyncpg.UniqueViolationError):
        return False
    return True


async def set_password(conn: asyncpg.Connection, role: str, password: str) -> None:
    """Give ``role`` ``password``, sent as its SCRAM-SHA-256 verifier: the statement (which a server
    logging DDL writes down) never holds the password itself."""
    statement = await conn.fetchval("SELECT format('ALTER ROLE %I PASSWORD %L', $1::text, $2::text)",
                                    role, scram_verifier(password))
    await conn.execute(statement)


def scram_verifier(password: str, salt: bytes | None = None, iterations: int = 4096) -> str:
    """What PostgreSQL keeps of a SCRAM-SHA-256 password (RFC 5802, 7677), made here rather than by
    the server from the password in the clear. An ASCII password is as SASLprep would have it."""
    salt = salt or secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode()

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(hashlib.sha256(client_key).digest())}:{b64(server_key)}"

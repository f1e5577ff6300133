"""The reader role's password reaches PostgreSQL as its SCRAM-SHA-256 verifier only: checked here
against RFC 7677's own exchange, and in the statement oversight sends."""

import base64
import hashlib
import hmac

from services.oversight.store import scram_verifier, set_password

# RFC 7677, section 3: user "user", password "pencil".
SALT = "W22ZaJ0SNY7soEsUEjb6gQ=="
AUTH_MESSAGE = ("n=user,r=rOprNGfwEbeRWgbNEkqO,"
                "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,"
                "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0").encode()
CLIENT_PROOF = "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
SERVER_SIGNATURE = "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="


def test_the_verifier_is_what_a_server_needs_to_check_the_rfcs_exchange():
    kind, rest = scram_verifier("pencil", salt=base64.b64decode(SALT)).split("$", 1)
    params, keys = rest.split("$")
    stored_key, server_key = (base64.b64decode(k) for k in keys.split(":"))
    assert (kind, params) == ("SCRAM-SHA-256", f"4096:{SALT}")
    # The server proves itself with ServerKey; it checks the client's proof against StoredKey.
    signature = hmac.new(server_key, AUTH_MESSAGE, hashlib.sha256).digest()
    assert base64.b64encode(signature).decode() == SERVER_SIGNATURE
    client_signature = hmac.new(stored_key, AUTH_MESSAGE, hashlib.sha256).digest()
    client_key = bytes(a ^ b for a, b in zip(base64.b64decode(CLIENT_PROOF), client_signature, strict=True))
    assert hashlib.sha256(client_key).digest() == stored_key


async def test_the_statement_oversight_sends_holds_the_verifier_not_the_password():
    class Connection:  # what set_password asks of asyncpg's: format() done as PostgreSQL does it
        def __init__(self):
            self.sent: list[str] = []

        async def fetchval(self, _query, role, verifier):
            return f"ALTER ROLE \"{role}\" PASSWORD '{verifier}'"

        async def execute(self, statement):
            self.sent.append(statement)

    conn = Connection()
    await set_password(conn, "oversight_reader", "pencil-and-paper")
    [statement] = conn.sent
    assert "SCRAM-SHA-256$4096:" in statement and "pencil-and-paper" not in statement

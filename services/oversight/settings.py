"""Oversight configuration, from ``OVERSIGHT_*`` environment variables."""

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from contracts.settings import MissingSecret, ServiceSettings, required_secret

ROLES = ("council", "front", "centre")


class OversightSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="OVERSIGHT_")

    port: int = 8003
    group_id: str = "oversight"
    pg_database: str = "oversight"
    # The API reads through a role that may only SELECT; the projection writes as the owner. Oversight
    # gives the role this password as it starts; one is needed wherever the owner has one (PGPASSWORD).
    reader_user: str = "oversight_reader"
    reader_password: SecretStr = SecretStr("")
    # How long the API's statement (or a new connection for it) may take before it is given up and
    # answered 503: a database gone without a word once held every reader, the public's included,
    # until TCP gave up. Longer than the heaviest figures take on a million cases.
    pg_command_timeout_seconds: float = 30.0
    max_batch: int = 1000
    # Kafka may hold a fetch this long to gather a fuller batch: the read model a tenth of a second
    # behind, for a fraction of the transactions and audit-chain rounds per event under load.
    gather_ms: int = 100
    # False: serve the API only (more read replicas of the API, or the benchmark); no Kafka needed.
    consume: bool = True
    # Bearer tokens of HĐND (council), MTTQ (front) and the 1022 centre; a role without one cannot log in.
    token_council: SecretStr = SecretStr("")
    token_front: SecretStr = SecretStr("")
    token_centre: SecretStr = SecretStr("")
    # Key of the digest that stands for a citizen's contact in the audit chain. Keep it secret and
    # never change it: the digests already chained were made with it. Oversight will not start without it.
    audit_key: SecretStr = SecretStr("")
    # A checkpoint (head hash and count) every N records, and at least every T seconds when the head moved.
    checkpoint_every: int = Field(1000, ge=1)
    checkpoint_seconds: float = Field(60.0, gt=0)
    # Statistics over the whole history are recomputed at most this often (0: on every request).
    stats_cache_seconds: float = 5.0
    # Where checkpoints are published for HĐND and MTTQ to keep; empty: only the table and the API.
    checkpoint_topic: str = "audit.checkpoints.v1"

    def dsn(self, reader: bool = False) -> str:
        return self.dsn_as(self.reader_user, self.reader_password.get_secret_value()) if reader else super().dsn()

    def required_reader_password(self) -> str:
        """The reader role's password: none is needed where the database trusts its clients (the owner
        has no password either); where the owner has one, the API's role could not log in without."""
        password = self.reader_password.get_secret_value()
        if not password.isascii():  # given as its SCRAM verifier, made here without SASLprep (store.py)
            raise MissingSecret("OVERSIGHT_READER_PASSWORD must be ASCII (a long random one, e.g. base64)")
        if not self.pg_password:
            return password
        return required_secret(self.reader_password, "OVERSIGHT_READER_PASSWORD",
                               "the database asks for passwords (PGPASSWORD is set), and the API's read-only"
                               " role is given this one as oversight starts").decode()

    def required_audit_key(self) -> bytes:
        """The audit key; without one oversight refuses to run. Unkeyed, a citizen's digest is no
        secret: HĐND and MTTQ see the phone masked (``+********456``) and could try the 10^5 numbers
        it hides against the audit export in a fraction of a second."""
        return required_secret(self.audit_key, "OVERSIGHT_AUDIT_KEY",
                               "oversight will not run without the key of the citizens' digests in the audit"
                               " chain (a long random secret, never changed once used)")

    def tokens(self) -> dict[str, str]:
        """Bearer token → role, for the roles that have a token."""
        by_role = {"council": self.token_council, "front": self.token_front, "centre": self.token_centre}
        return {token.get_secret_value(): role for role, token in by_role.items() if token.get_secret_value()}

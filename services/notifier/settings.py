"""Notifier configuration, from ``NOTIFIER_*`` environment variables.

Provider endpoints are configuration: an empty one means that channel is not in use here, and a
citizen who can only be reached on it is recorded as not reachable, with the reason.
"""

from datetime import timedelta

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from contracts.settings import ServiceSettings, required_secret


# How much longer than its time-out a send is given before it is cut off. The providers' own
# time-outs (the HTTP client's, SMTP's) come first and know what they cut: a receiver's 2xx whose
# body then stalls is a delivery. Cut off from outside at the same moment, it was "maybe taken",
# and sent again.
SEND_GRACE = 2.0

LOOPBACK = ("127.0.0.1", "::1", "localhost")


class NotifierSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="NOTIFIER_")

    port: int = 8004
    group_id: str = "notifier"
    pg_database: str = "notifier"
    pg_pool_size: int = 10

    # Where a unit's district service takes its cases when the directory names no URL; {unit_id} is filled in.
    unit_webhook_url: str = "http://127.0.0.1:8005/units/{unit_id}/assignments"
    # Signs every webhook POST (X-1022-Unit-Signature, services/notifier/providers.py) under the key
    # derived from it for the unit it goes to; unset: unsigned.
    webhook_signing_key: SecretStr = SecretStr("")
    # The key every unit was given before units had keys of their own: each POST is signed with it
    # as well (X-1022-Signature, as then), for district services still checking it while each is
    # given its unit's (README). Unit keys come from the signing key, which must be another.
    webhook_shared_key: SecretStr = SecretStr("")
    sms_gateway_url: str = ""
    sms_ascii: bool = Field(False, description="Strip Vietnamese diacritics: brandname SMS routes often require it")
    # An SMS takes at most this many segments (GSM 03.38: 160 GSM 7-bit characters or 70 UCS-2 in
    # one, 153 or 67 in each of several): a unit's answer longer than that leaves room for is cut
    # short. Gateways bill by segment, and brandname routes refuse messages over a few.
    sms_max_segments: int = Field(3, ge=1)
    # Where anyone may read a public request's answer by its tracking code, {code} filled in (a page
    # over oversight's GET /v1/public/requests/{tracking_code}): an SMS whose answer was cut short
    # says so, for a request its citizen made public. Empty: it says nothing of where.
    public_lookup_url: str = ""
    push_gateway_url: str = ""
    # The Zalo OA message API (v3: https://openapi.zalo.me/v3.0/oa/message/cs) and the OA's access
    # token: borrowed from intake, which keeps it fresh (its POST /internal/zalo/access-token and the
    # reader key intake knows as INTAKE_ZALO_TOKEN_READER_KEY), or fixed here and replaced by hand.
    zalo_api_url: str = ""
    zalo_token_url: str = ""
    zalo_token_key: SecretStr = SecretStr("")
    zalo_access_token: SecretStr = SecretStr("")
    # Zalo lets an OA answer a user freely for a while after the user's last message; later it refuses.
    zalo_reply_window_hours: float = 7 * 24
    smtp_host: str = ""
    smtp_port: int = 25
    smtp_user: str = ""
    smtp_password: SecretStr = SecretStr("")
    # STARTTLS checks the relay's certificate and name against the system's CAs, or against
    # NOTIFIER_SMTP_CA_FILE's (a relay with a certificate of the city's own CA).
    smtp_starttls: bool = False
    smtp_ca_file: str = ""
    mail_from: str = "tongdai1022@hcmc.invalid"

    # Tries over about an hour, 41 minutes at the least (1, 2, 4 … 256 s apart, then every 300 s,
    # each wait between half and all of that): a gateway's outage of that length loses no message
    # to a citizen who left only a phone. Past it a delivery fails, and goes on by the citizen's
    # next route or to people through the dead-letter topic.
    max_attempts: int = 25
    backoff_base_seconds: float = 1.0
    backoff_max_seconds: float = 300.0
    send_timeout_seconds: float = 10.0
    # A delivery being sent is leased for this long: if its sender dies, another takes it over after.
    lease_seconds: float = 30.0
    # Deliveries in flight per channel, so one slow provider cannot hold up the others.
    concurrency: int = 32
    poll_seconds: float = 0.25
    # A delivery on a channel this notifier has no provider for is taken (to go on by the citizen's
    # next route, or fail) once it has waited this long past its time: until then a notifier that
    # has the provider, as in a rolling change of configuration, sends it.
    unconfigured_after_seconds: float = 600.0
    max_batch: int = 500
    # Kafka may hold a fetch this long to gather a fuller batch: a message to a citizen or a unit a
    # tenth of a second later, for a fraction of the transactions per message under load.
    gather_ms: int = 100

    @model_validator(mode="after")
    def _lease_outlives_a_send(self) -> "NotifierSettings":
        # A lease shorter than a send would let a second sender take a delivery still in flight.
        if self.lease_seconds <= self.send_timeout_seconds + SEND_GRACE + 1:
            raise ValueError(f"NOTIFIER_LEASE_SECONDS must exceed NOTIFIER_SEND_TIMEOUT_SECONDS by more than"
                             f" {SEND_GRACE + 1:g} seconds")
        return self

    @model_validator(mode="after")
    def _no_password_in_clear(self) -> "NotifierSettings":
        # A login without TLS sends the relay's password, and then every message, readable on the way.
        if self.smtp_host and self.smtp_user and not self.smtp_starttls and self.smtp_host not in LOOPBACK:
            raise ValueError("NOTIFIER_SMTP_USER is set without NOTIFIER_SMTP_STARTTLS: the password would be sent"
                             f" in clear to {self.smtp_host}")
        return self

    @model_validator(mode="after")
    def _unit_keys_not_from_the_shared_one(self) -> "NotifierSettings":
        # Every unit holds the shared key: unit keys derived from it, any unit could make any other's.
        shared = self.webhook_shared_key.get_secret_value()
        if shared and shared == self.webhook_signing_key.get_secret_value():
            raise ValueError("NOTIFIER_WEBHOOK_SHARED_KEY is the key every unit holds: NOTIFIER_WEBHOOK_SIGNING_KEY,"
                             " from which each unit's own key is made, must be another")
        return self

    def required_zalo_token_key(self) -> str:
        """The key to borrow intake's token with, which NOTIFIER_ZALO_TOKEN_URL needs."""
        return required_secret(self.zalo_token_key, "NOTIFIER_ZALO_TOKEN_KEY",
                               "NOTIFIER_ZALO_TOKEN_URL is borrowed from with intake's reader key").decode()

    @property
    def zalo_reply_window(self) -> timedelta:
        return timedelta(hours=self.zalo_reply_window_hours)

    def channels(self) -> frozenset[str]:
        """The channels this notifier can send on."""
        # Zalo without a token is not in use: every send would be refused.
        zalo = self.zalo_api_url and (self.zalo_token_url or self.zalo_access_token.get_secret_value())
        configured = {"webhook": True, "sms": self.sms_gateway_url, "push": self.push_gateway_url,
                      "zalo": zalo, "email": self.smtp_host}
        return frozenset(c for c, on in configured.items() if on)

"""Intake configuration, from ``INTAKE_*`` environment variables.

Secrets (the Zalo OA secret key, the OA's access or refresh token and the app's secret, the app's
token key, operator tokens, Open311 API keys) come only from the environment; nothing here has a
usable default for them, and a channel whose secret is not configured refuses its requests rather
than accepting unauthenticated ones. Intake itself does not start without the key of its tracking
codes, nor with a refresh token it could not refresh.
"""

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from contracts.settings import MissingSecret, ServiceSettings, required_secret


class IntakeSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="INTAKE_")

    port: int = 8001
    # Where citizens reach this service: the base of the attachment links put into requests.
    public_url: str = ""
    # How long a request may wait for Kafka's acknowledgement before the caller gets 503.
    publish_timeout_seconds: float = 5.0
    retry_after_seconds: int = 5
    # Channel submissions this instance serves at once; past it they get 503 with Retry-After at
    # once instead of queueing (services/intake/admission.py). Ample for a healthy mesh: at 200
    # requests/s about 5 are in flight.
    max_in_flight: int = 256
    # The largest body each channel reads; past it the client gets 413 at once, as the bytes arrive
    # (services/intake/admission.py), with or without a Content-Length. A JSON submission with
    # every field at its longest, decomposed and with every non-ASCII character escaped, is 44 KB.
    max_body_bytes: int = 64 * 1024
    # Open311 bodies are mostly form-encoded, where a Vietnamese letter takes up to 9 bytes.
    open311_max_body_bytes: int = 128 * 1024
    # Zalo sends an event once and never again: ample room for what a future event may carry.
    zalo_max_body_bytes: int = 256 * 1024
    # How long a body may take to arrive once its request's headers have; past it, 408. A slot in
    # flight is taken only once the body is in, so connections that send nothing cannot fill them.
    # 64 KB at 3 KB/s (a poor mobile link) takes 22 s.
    body_read_seconds: float = 30.0
    # How long a client's idle connection is kept open. uvicorn's default, 5 s, is shorter than
    # HTTP clients keep theirs (aiohttp 15 s, Go 90 s) and than load balancers' idle timeouts
    # (60 s is common): a client that reuses a connection just as intake closes it gets a
    # disconnect instead of an answer. Longer than theirs, the client or balancer closes first.
    keep_alive_seconds: int = 75
    categories_file: str | None = None

    pg_database: str = "intake"
    pg_pool_size: int = 20
    # How long a statement, or a new connection, may take before it is given up and the request
    # answered 503: a database gone without a word (its host lost, a partition) once held every
    # claim for the quarter of an hour TCP takes to give up, and then every pooled connection.
    pg_command_timeout_seconds: float = 10.0

    # Requests per sender (phone number, app user, client address) per window, shared by every
    # intake instance through PostgreSQL.
    sender_limit: int = 20
    sender_window_seconds: int = 600
    # Zalo messages per user per window: a dialogue takes several, a flood takes hundreds.
    zalo_message_limit: int = 30
    zalo_window_seconds: int = 60

    # Web form uploads, kept in the intake database and referenced by link from the request.
    max_upload_bytes: int = 5 * 1024 * 1024
    max_uploads: int = 5

    # Zalo Official Account "1022 TPHCM": webhook verification and the OA message API.
    zalo_app_id: str = ""
    zalo_oa_secret_key: SecretStr = SecretStr("")
    # A fixed access token, replaced by hand; or, better, a refresh token from the OA's authorization
    # with the app's secret key: intake then keeps the token fresh (services/intake/oa_token.py).
    zalo_access_token: SecretStr = SecretStr("")
    zalo_refresh_token: SecretStr = SecretStr("")
    zalo_app_secret: SecretStr = SecretStr("")
    zalo_oauth_url: str = "https://oauth.zaloapp.com/v4/oa/access_token"
    zalo_token_refresh_ahead_seconds: int = 3 * 3600
    # The notifier's key to borrow the kept token (POST /internal/zalo/access-token); empty: lent to no one.
    zalo_token_reader_key: SecretStr = SecretStr("")
    zalo_api_url: str = "https://openapi.zalo.me"
    # An event whose timestamp is older than this is a replay (or too late to answer): 401.
    zalo_max_event_age_seconds: int = 300
    zalo_conversation_ttl_hours: int = 24
    # How often each instance looks for dialogue work a crash or an outage left undone.
    zalo_sweep_seconds: float = 2.0
    # How long a user's dialogue waits after an event arrives before it takes the user's events: one
    # event the citizen sent just before, taken by another instance a few milliseconds later, is then
    # applied first, in Zalo's order, instead of after (a photo after the "Đồng ý" that sent the case).
    zalo_settle_seconds: float = 0.5
    zalo_send_timeout_seconds: float = 5.0

    # The key of tracking codes (contracts/ids.py): without it anyone who knows a request's channel
    # key could compute its code and look it up. Intake does not start without one; changing it
    # changes only the codes of requests still to come (given codes stay in the receipts).
    tracking_code_key: SecretStr = SecretStr("")

    # The "Tổng đài 1022" app: tokens signed by its login service once the phone passed OTP.
    app_jwt_algorithm: str = "RS256"
    app_jwt_key: SecretStr = SecretStr("")
    app_jwt_key_file: Path | None = None
    app_jwt_issuer: str | None = None
    app_jwt_audience: str | None = None
    app_jwt_leeway_seconds: int = 30

    # Operators (and callbots) of the 1022 centre: operator id -> bearer token.
    phone_operator_tokens: dict[str, SecretStr] = Field(default_factory=dict)
    # Which of them are callbots: they take the overflow, and a withheld call they enter is not
    # counted against their desk (a person's desk is limited like any sender).
    phone_callbots: list[str] = Field(default_factory=list)
    # IVR branches whose calls are requests for help ("bấm phím 2": support).
    phone_ivr_branches: list[int] = Field(default_factory=lambda: [2])

    # Open311 GeoReport v2: API keys of the 311 apps allowed to post; with none, every post is refused (503).
    open311_api_keys: list[SecretStr] = Field(default_factory=list)
    open311_jurisdiction_id: str = "tphcm.gov.vn"
    # Request status comes from oversight's public lookup.
    oversight_url: str = "http://127.0.0.1:8003"
    oversight_timeout_seconds: float = 3.0

    def required_tracking_code_key(self) -> bytes:
        return required_secret(self.tracking_code_key, "INTAKE_TRACKING_CODE_KEY",
                               "intake will not run without the key its tracking codes are made with"
                               " (a long random secret)")

    def required_zalo_app_secret(self) -> str:
        """The app's secret key, which refreshing the OA token needs once a refresh token is set."""
        if not self.zalo_app_id:
            raise MissingSecret("INTAKE_ZALO_APP_ID is not set: INTAKE_ZALO_REFRESH_TOKEN is refreshed as that app")
        return required_secret(self.zalo_app_secret, "INTAKE_ZALO_APP_SECRET",
                               "INTAKE_ZALO_REFRESH_TOKEN is refreshed with the app's secret key").decode()

    def base_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    def app_key(self) -> str:
        """The app token key: a PEM public key (RS/ES/PS algorithms) or the shared secret (HS)."""
        if self.app_jwt_key_file:
            return self.app_jwt_key_file.read_text()
        return self.app_jwt_key.get_secret_value()

"""Who is sending: the app's citizen (a JWT after OTP), an operator of the 1022 centre (a bearer
token), a 311 app (an API key). Every refusal is a :class:`Problem` naming the header at fault."""

import functools
import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

import jwt

from services.intake.domain import Problem, e164
from services.intake.settings import IntakeSettings

BEARER = {"WWW-Authenticate": "Bearer"}


def bearer_token(authorization: str | None) -> str:
    scheme, _, token = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Problem("Authorization", "Thiếu mã xác thực (Bearer)", "Missing bearer token", status=401, headers=BEARER)
    return token.strip()


@dataclass(frozen=True)
class AppCitizen:
    """A citizen signed in to the app, whose phone number the app verified by OTP."""

    user_id: str
    phone: str


@functools.lru_cache(maxsize=4)
def _prepared(algorithm: str, key: str) -> Any:
    """The key as PyJWT checks with it, made once per key: parsing a PEM public key on every token
    was a third of the check (120 µs against 84). A key replaced in its file is read and made anew."""
    return jwt.get_algorithm_by_name(algorithm).prepare_key(key)


def app_citizen(authorization: str | None, settings: IntakeSettings) -> AppCitizen:
    """The citizen a valid app token names; 401 for a missing, expired, forged or unverified one."""
    token = bearer_token(authorization)
    key = settings.app_key()
    if not key:
        raise Problem("Authorization", "Kênh ứng dụng chưa được cấu hình", "The app channel is not configured here",
                      status=503)
    try:
        claims = jwt.decode(token, _prepared(settings.app_jwt_algorithm, key), algorithms=[settings.app_jwt_algorithm],
                            audience=settings.app_jwt_audience,
                            issuer=settings.app_jwt_issuer, leeway=settings.app_jwt_leeway_seconds,
                            # Without INTAKE_APP_JWT_AUDIENCE a token made for another app (one with an
                            # "aud") is refused, as PyJWT does: the login service's tokens are not all ours.
                            options={"require": ["exp", "sub"]})
    except jwt.ExpiredSignatureError:
        raise Problem("Authorization", "Phiên đăng nhập đã hết hạn", "The token has expired", status=401,
                      headers=BEARER) from None
    except jwt.InvalidTokenError:
        raise Problem("Authorization", "Mã xác thực không hợp lệ", "The token is not valid", status=401,
                      headers=BEARER) from None
    if claims.get("phone_verified") is not True or not isinstance(claims.get("phone"), str):
        raise Problem("Authorization", "Số điện thoại chưa được xác thực bằng OTP",
                      "The token does not carry an OTP-verified phone number", status=401, headers=BEARER)
    subject = str(claims["sub"])
    if not subject.isprintable() or len(subject) > 200:
        raise Problem("Authorization", "Mã xác thực không hợp lệ", "The token subject is not valid", status=401,
                      headers=BEARER)
    try:
        phone = e164(claims["phone"])
    except Problem:
        raise Problem("Authorization", "Số điện thoại trong mã xác thực không hợp lệ",
                      "The token's phone number is not valid", status=401, headers=BEARER) from None
    return AppCitizen(user_id=subject, phone=phone)


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).digest()


def _matches(token: str, secrets: list[str]) -> int | None:
    """The index of the secret ``token`` equals; every secret is compared, so timing tells nothing."""
    given, found = _digest(token), None
    for i, secret in enumerate(secrets):
        if hmac.compare_digest(given, _digest(secret)) and secret:
            found = i
    return found


def operator(authorization: str | None, settings: IntakeSettings) -> str:
    """The id of the 1022 operator (or callbot) whose token this is; 401 otherwise."""
    token = bearer_token(authorization)
    names = list(settings.phone_operator_tokens)
    found = _matches(token, [settings.phone_operator_tokens[n].get_secret_value() for n in names])
    if found is None:
        raise Problem("Authorization", "Điện thoại viên không được xác thực", "Unknown operator token", status=401,
                      headers=BEARER)
    return names[found]


def token_borrower(authorization: str | None, settings: IntakeSettings) -> None:
    """The notifier borrowing the OA access token: 401 without the reader key; 503 when none is set."""
    key = settings.zalo_token_reader_key.get_secret_value()
    if not key:
        raise Problem("Authorization", "Mã truy cập Zalo OA không được chia sẻ ở đây",
                      "The OA access token is lent to no one here", status=503)
    if _matches(bearer_token(authorization), [key]) is None:
        raise Problem("Authorization", "Khóa không hợp lệ", "Unknown reader key", status=401, headers=BEARER)


def open311_client(api_key: str | None, settings: IntakeSettings) -> None:
    """Open311 POSTs need a known api_key (GeoReport v2 answers 403); with no key configured the
    channel is closed (503, as the app and Zalo channels without their secrets), never open to all."""
    keys = [k.get_secret_value() for k in settings.open311_api_keys if k.get_secret_value()]
    if not keys:
        raise Problem("api_key", "Kênh Open311 chưa được cấu hình", "The Open311 channel is not configured here",
                      status=503)
    if not api_key or _matches(api_key, keys) is None:
        raise Problem("api_key", "Khóa API không hợp lệ", "Invalid or missing api_key", status=403)

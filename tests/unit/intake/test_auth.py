"""Who may send: app tokens after OTP, operators' tokens, Open311 API keys."""

import time

import jwt
import pytest

from services.intake.auth import app_citizen, open311_client, operator
from services.intake.domain import Problem
from services.intake.settings import IntakeSettings

SECRET = "a-shared-secret-of-the-app-login-service-0123456789"
SETTINGS = IntakeSettings(app_jwt_algorithm="HS256", app_jwt_key=SECRET, app_jwt_audience="intake",
                          phone_operator_tokens={"op-1": "token-one", "op-2": "token-two"},
                          open311_api_keys=["key-311"])


def token(secret=SECRET, **claims):
    base = {"sub": "u-1", "phone": "0912345678", "phone_verified": True, "exp": int(time.time()) + 60, "aud": "intake"}
    return "Bearer " + jwt.encode(base | claims, secret, algorithm="HS256")


def refused(call, *args) -> Problem:
    with pytest.raises(Problem) as problem:
        call(*args)
    return problem.value


def test_an_app_token_names_the_citizen_and_the_verified_phone():
    citizen = app_citizen(token(), SETTINGS)
    assert (citizen.user_id, citizen.phone) == ("u-1", "+84912345678")


@pytest.mark.parametrize("authorization", [
    None, "Bearer", "Basic dTpw", token(secret="another-secret-of-the-same-length-0123456789"),
    token(exp=int(time.time()) - 120), token(phone_verified=False), token(phone_verified="true"),
    token(aud="someone-else"), token(phone="12"), "Bearer " + jwt.encode({"sub": "u"}, None, algorithm="none"),
])
def test_bad_app_tokens_are_401(authorization):
    problem = refused(app_citizen, authorization, SETTINGS)
    assert problem.status == 401 and problem.headers == {"WWW-Authenticate": "Bearer"}


def test_a_token_made_for_another_app_is_refused_when_no_audience_is_set():
    # The app's login service may sign tokens for several apps; one for another was taken here.
    unset = IntakeSettings(app_jwt_algorithm="HS256", app_jwt_key=SECRET)
    assert refused(app_citizen, token(aud="other-app"), unset).status == 401
    base = {"sub": "u-1", "phone": "0912345678", "phone_verified": True, "exp": int(time.time()) + 60}
    assert app_citizen("Bearer " + jwt.encode(base, SECRET, algorithm="HS256"), unset).user_id == "u-1"


def test_an_unconfigured_app_channel_refuses_rather_than_trusts():
    assert refused(app_citizen, token(), IntakeSettings(app_jwt_key="")).status == 503


def test_operators_are_known_by_their_own_token():
    assert operator("Bearer token-two", SETTINGS) == "op-2"
    assert refused(operator, "Bearer token-three", SETTINGS).status == 401
    assert refused(operator, "Bearer ", SETTINGS).status == 401
    assert refused(operator, "Bearer token-one", IntakeSettings()).status == 401


def test_open311_asks_for_a_known_key():
    open311_client("key-311", SETTINGS)
    assert refused(open311_client, "nope", SETTINGS).status == 403
    assert refused(open311_client, None, SETTINGS).status == 403


@pytest.mark.parametrize("keys", [[], [""]])
def test_an_unconfigured_open311_channel_refuses_rather_than_trusts(keys):
    unconfigured = IntakeSettings(open311_api_keys=keys)
    for api_key in (None, "", "key-311"):
        problem = refused(open311_client, api_key, unconfigured)
        assert (problem.status, problem.field) == (503, "api_key")

"""Services that do not start without a secret of theirs, and say which.

Oversight's audit key: without it a masked phone (``+********456``) is 10^5 guesses from the number
behind the audit export's digest. Intake's tracking-code key: without it anyone who knows a
request's channel key (a call id, an ``Idempotency-Key``) could work out its code and look it up.
"""

import secrets

import pytest

from contracts.settings import MissingSecret
from services.intake import main as intake
from services.intake.settings import IntakeSettings
from services.notifier import main as notifier
from services.notifier.settings import NotifierSettings
from services.oversight import main as oversight
from services.oversight.settings import OversightSettings

SERVICES = [pytest.param(oversight, OversightSettings, "audit_key", "OVERSIGHT_AUDIT_KEY", id="oversight"),
            pytest.param(intake, IntakeSettings, "tracking_code_key", "INTAKE_TRACKING_CODE_KEY", id="intake")]


@pytest.mark.parametrize("key", ["", "   "])
@pytest.mark.parametrize(("service", "settings", "field", "variable"), SERVICES)
def test_the_app_is_not_made_without_the_key(service, settings, field, variable, key):
    with pytest.raises(MissingSecret, match=f"{variable} is not set"):
        service.create_app(settings(**{field: key}))


@pytest.mark.parametrize(("service", "settings", "field", "variable"), SERVICES)
def test_the_service_exits_naming_the_variable(service, settings, field, variable, monkeypatch):
    monkeypatch.setenv(variable, "")
    with pytest.raises(SystemExit) as stopped:
        service.serve()
    assert f"{variable} is not set" in str(stopped.value.code)


@pytest.mark.parametrize(("service", "settings", "field", "variable"), SERVICES)
def test_with_a_key_the_app_is_made(service, settings, field, variable):
    assert service.create_app(settings(**{field: secrets.token_urlsafe(32)})).title.startswith("1022 ")


@pytest.mark.parametrize(("app_id", "app_secret", "variable"), [
    ("", "s3cret", "INTAKE_ZALO_APP_ID"), ("4291763606161179100", " ", "INTAKE_ZALO_APP_SECRET")])
def test_intake_is_not_made_with_a_refresh_token_it_could_not_refresh(app_id, app_secret, variable):
    """Else it would start, and the chatbot would fall silent when the first token expired."""
    settings = IntakeSettings(tracking_code_key=secrets.token_urlsafe(32), zalo_refresh_token="seed",
                              zalo_app_id=app_id, zalo_app_secret=app_secret)
    with pytest.raises(MissingSecret, match=f"{variable} is not set"):
        intake.create_app(settings)


def test_a_notifier_told_to_borrow_the_zalo_token_is_not_made_without_the_key():
    """Else it would start, and be refused by intake every few seconds while Zalo messages waited."""
    settings = NotifierSettings(zalo_api_url="http://127.0.0.1:9/zalo", zalo_token_url="http://127.0.0.1:9/lend")
    with pytest.raises(MissingSecret, match="NOTIFIER_ZALO_TOKEN_KEY is not set"):
        notifier.create_app(settings)


def test_zalo_without_a_token_is_a_channel_not_in_use():
    """Its messages go on by the citizen's next route at once, instead of 25 tries Zalo refuses."""
    assert "zalo" not in NotifierSettings(zalo_api_url="http://127.0.0.1:9/zalo").channels()
    assert "zalo" in NotifierSettings(zalo_api_url="http://127.0.0.1:9/zalo", zalo_access_token="t").channels()


def test_oversight_is_not_made_where_the_database_asks_for_passwords_and_its_reader_has_none():
    """Its read-only role was made without a password: where PostgreSQL asks for one (a password
    for the owner, as in deploy/compose.yaml), the API could not log in and oversight never came up."""
    key = secrets.token_urlsafe(32)
    with pytest.raises(MissingSecret, match="OVERSIGHT_READER_PASSWORD is not set"):
        oversight.create_app(OversightSettings(audit_key=key, pg_password="owner's"))
    made = oversight.create_app(OversightSettings(audit_key=key, pg_password="owner's", reader_password="reader's"))
    assert made.title.startswith("1022 ")
    # Its verifier is made here, and PostgreSQL would read a password that is not ASCII otherwise.
    with pytest.raises(MissingSecret, match="must be ASCII"):
        oversight.create_app(OversightSettings(audit_key=key, pg_password="owner's", reader_password="mật khẩu"))


@pytest.mark.parametrize("setting", [{"checkpoint_every": 0}, {"checkpoint_seconds": 0}])
def test_oversight_refuses_checkpoint_settings_that_would_stop_its_projection(setting):
    """Every 0 records divided by zero in each batch, which was rolled back and read again for good."""
    with pytest.raises(ValueError, match="greater than"):
        OversightSettings(audit_key=secrets.token_urlsafe(32), **setting)

"""Oversight does not start without its audit key: with an empty one, a masked phone
(``+849*****456``) is 10^5 guesses from the number behind the audit export's digest."""

import secrets

import pytest

from services.oversight.main import create_app, serve
from services.oversight.settings import MissingSecret, OversightSettings


@pytest.mark.parametrize("key", ["", "   "])
def test_the_app_is_not_made_without_an_audit_key(key):
    with pytest.raises(MissingSecret, match="OVERSIGHT_AUDIT_KEY is not set"):
        create_app(OversightSettings(audit_key=key))


def test_the_service_exits_naming_the_variable(monkeypatch):
    monkeypatch.setenv("OVERSIGHT_AUDIT_KEY", "")
    with pytest.raises(SystemExit) as stopped:
        serve()
    assert "OVERSIGHT_AUDIT_KEY is not set" in str(stopped.value.code)


def test_with_a_key_the_app_is_made():
    assert create_app(OversightSettings(audit_key=secrets.token_urlsafe(32))).title.startswith("1022 oversight")

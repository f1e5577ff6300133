"""The reference district client takes only the notifier's webhooks signed with its unit's key."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from examples.district_client import create_app
from services.notifier.providers import SIGNATURE_HEADER, UNIT_SIGNATURE_HEADER, signature, unit_key

KEY = b"the city's webhook key"
BODY = b'{"delivery_id":"d-1","template":"assignment","event":{"event_type":"AssignmentIssued"}}'
UNIT, OTHER = "hcmc-2021/26734", "hcmc-2021/26737"
URL = f"/units/{UNIT}/assignments"
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("configured", ["the notifier's key", "its unit's key"])
def test_a_webhook_not_signed_with_its_units_key_lately_is_refused(monkeypatch, configured):
    monkeypatch.setenv("DISTRICT_UNITS", "none")
    if configured == "the notifier's key":  # the demo's stand-in for every unit
        monkeypatch.setenv("NOTIFIER_WEBHOOK_SIGNING_KEY", KEY.decode())
    else:  # a district's own service, given its unit's key
        monkeypatch.setenv("DISTRICT_WEBHOOK_KEY", unit_key(KEY, UNIT).decode())
    now = int(time.time())
    own = unit_key(KEY, UNIT)
    with TestClient(create_app()) as district:
        def post(header: str | None, body: bytes = BODY, legacy: str | None = None) -> int:
            headers = {"Idempotency-Key": "d-1"} | ({UNIT_SIGNATURE_HEADER: header} if header is not None else {})
            headers |= {SIGNATURE_HEADER: legacy} if legacy is not None else {}
            return district.post(URL, content=body, headers=headers).status_code

        assert post(signature(own, BODY, now)) == 200
        assert post(None) == 401
        assert post(signature(b"someone else's key", BODY, now)) == 401
        assert post(signature(unit_key(KEY, OTHER), BODY, now)) == 401, "another unit signing for this one"
        assert post(signature(KEY, BODY, now)) == 401, "the notifier's key is no unit's"
        # The signature every unit could once make, which the notifier adds while districts move to theirs.
        assert post(None, legacy=signature(KEY, BODY, now)) == 401
        assert post(signature(own, BODY, now), legacy=signature(KEY, BODY, now)) == 200
        assert post(signature(own, BODY, now), body=BODY.replace(b"assignment", b"assignmenT")) == 401
        assert post(signature(own, BODY, now - 3600)) == 401, "a signed POST recorded an hour ago and sent again"
        assert post("t=abc,v1=00") == 401 and post("v1,t=1") == 401
        # Sent again under another Idempotency-Key (which the signature does not cover): still one delivery.
        again = district.post(URL, content=BODY, headers={"Idempotency-Key": "d-2",
                                                          UNIT_SIGNATURE_HEADER: signature(own, BODY, now)})
        assert again.json() == {"ok": True, "first_time": False}
        nested = b"[" * 100_000 + b"]" * 100_000  # past what json reads: a 400, not the client's 500
        assert post(signature(own, nested, now), body=nested) == 400


def test_the_key_an_operator_prints_for_a_unit_is_the_one_its_webhooks_are_signed_with(monkeypatch):
    env = {**os.environ, "NOTIFIER_WEBHOOK_SIGNING_KEY": KEY.decode()}
    printed = subprocess.run([sys.executable, "-m", "services.notifier", "unit-key", UNIT], env=env, cwd=ROOT,
                             capture_output=True, text=True, timeout=60)
    assert printed.returncode == 0, printed.stderr
    monkeypatch.setenv("DISTRICT_UNITS", "none")
    monkeypatch.setenv("DISTRICT_WEBHOOK_KEY", printed.stdout.strip())
    with TestClient(create_app()) as district:
        header = signature(unit_key(KEY, UNIT), BODY, int(time.time()))
        assert district.post(URL, content=BODY, headers={UNIT_SIGNATURE_HEADER: header}).status_code == 200
    unset = {k: v for k, v in env.items() if k != "NOTIFIER_WEBHOOK_SIGNING_KEY"}
    refused = subprocess.run([sys.executable, "-m", "services.notifier", "unit-key", UNIT], env=unset, cwd=ROOT,
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode == 1 and "NOTIFIER_WEBHOOK_SIGNING_KEY is not set" in refused.stderr

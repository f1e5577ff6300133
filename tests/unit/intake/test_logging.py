"""What intake's logs keep of a status lookup: not the tracking code, which opens a private
request's status (httpx logs every request's URL at INFO)."""

import logging

import httpx

from services.intake.main import set_up_logging


def test_a_status_lookup_leaves_no_tracking_code_in_the_logs(caplog):
    set_up_logging()
    code = "1H70Q-X6293"
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json={"status": "routed"}))
    with caplog.at_level(logging.INFO), httpx.Client(transport=transport) as client:
        assert client.get(f"http://127.0.0.1:8003/v1/public/requests/{code}").status_code == 200
        logging.getLogger("services.intake").info("a line intake itself logs")
    assert "a line intake itself logs" in caplog.text
    assert code not in caplog.text

"""Thousands of generated requests across every intake endpoint, against the real Kafka and
PostgreSQL: none may get a 5xx, and every request intake accepted must be on the topic, once.

Hypothesis draws batches of requests (mostly well-formed, often not: junk text, lone surrogates,
control characters, forged signatures and tokens, reused keys); each batch is sent concurrently,
so retries of the same key also race each other.
"""

import asyncio
import json
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import unquote

import asyncpg
import httpx
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from contracts import ids
from tests.integration.intake.harness import IntakeProcess, KafkaTail, StandIn, channel_env
from tests.integration.intake.strategies import Call, any_call, new_users, zalo_request

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]
BATCH = 25
BATCHES = 204  # 5,100 requests


@pytest.fixture
def oversight():
    stand_in = StandIn(lambda method, path, body: (404, {"detail": "no request with this code yet"}))
    yield stand_in
    stand_in.close()


def send(client: httpx.Client, keys, call: Call) -> httpx.Response:
    # HTTP forbids spaces around a header value; a client could not send them.
    call.headers = {name: value.strip() for name, value in call.headers.items()}
    if call.zalo is not None:
        body, headers = zalo_request(keys, call)
        return client.post(call.path, content=body, headers=headers)
    if call.json_body is not None or (call.method == "POST" and call.form is None):
        # Encoded here with ASCII escapes: httpx's own JSON encoding refuses lone surrogates.
        return client.request(call.method, call.path, content=json.dumps(call.json_body).encode(),
                              headers={"Content-Type": "application/json", **call.headers})
    return client.request(call.method, call.path, data=call.form, files=call.files, headers=call.headers)


def accepted(call: Call, response: httpx.Response) -> tuple[str, str] | None:
    """(channel, tracking code) of a request intake says Kafka holds; None for anything else."""
    if response.status_code == 202 and call.endpoint in ("web", "app", "phone"):
        return call.endpoint, response.json()["tracking_code"]
    if response.status_code == 202 and call.endpoint == "open311":
        return "open311", response.json()[0]["service_request_id"]
    if response.status_code == 303 and call.endpoint == "form" and "/received/" in response.headers["location"]:
        return "web", unquote(response.headers["location"].split("/received/")[1].split("?")[0])
    return None


@pytest.fixture
def intake_process(keys, oa, oversight, kafka_bootstrap, pg_port, intake_database, tmp_path):
    """Intake as its own process: the run's load does not share a GIL (or a random state) with hypothesis."""
    env = channel_env(keys) | {
        "INTAKE_KAFKA_BOOTSTRAP": kafka_bootstrap, "INTAKE_PG_PORT": str(pg_port),
        "INTAKE_PG_DATABASE": intake_database, "INTAKE_ZALO_API_URL": oa.url, "INTAKE_OVERSIGHT_URL": oversight.url,
        "INTAKE_SENDER_LIMIT": "40", "INTAKE_ZALO_MESSAGE_LIMIT": "60", "INTAKE_ZALO_SWEEP_SECONDS": "0.5"}
    process = IntakeProcess(env, tmp_path / "intake.log").start()
    yield process
    process.stop()


def test_generated_requests_never_get_a_5xx_and_every_202_is_on_kafka(intake_process, keys, kafka_bootstrap,
                                                                       pg_port, intake_database):
    intake = intake_process
    loop = asyncio.new_event_loop()
    tail = loop.run_until_complete(KafkaTail(kafka_bootstrap).open())
    app_tokens = [keys.app_token(sub=f"app-user-{i}", phone=f"0912{i:06d}") for i in range(20)]
    app_tokens += [keys.app_token(expires_in=-300), keys.app_token(verified=False)]
    calls = any_call(keys, app_tokens, new_users(30))
    taken: dict[str, str] = {}
    statuses: dict[tuple[str, int], int] = {}
    sent = 0

    try:
        with httpx.Client(base_url=intake.url, timeout=30) as client, ThreadPoolExecutor(16) as pool:
            # No shrinking: a batch is 25 live requests, and the failing one is named in the assertion.
            @settings(max_examples=BATCHES, deadline=None, database=None, phases=[Phase.explicit, Phase.generate],
                      suppress_health_check=list(HealthCheck), report_multiple_bugs=False)
            @given(st.lists(calls, min_size=BATCH, max_size=BATCH))
            def batch(drawn: list[Call]) -> None:
                nonlocal sent
                responses = list(pool.map(lambda c: send(client, keys, c), drawn))
                sent += len(drawn)
                for call, response in zip(drawn, responses, strict=True):
                    statuses[(call.endpoint, response.status_code)] = statuses.get((call.endpoint, response.status_code), 0) + 1
                    assert response.status_code < 500, (call, response.status_code, response.text[:500])
                    if (found := accepted(call, response)) is not None:
                        channel, code = found
                        assert ids.normalise_tracking_code(code) == code
                        taken[code] = channel

            started = time.monotonic()
            batch()
            took = time.monotonic() - started

        print(f"\n{sent} generated requests in {took:.0f}s; {len(taken)} accepted; by endpoint and status: "
              + ", ".join(f"{e} {s}: {n}" for (e, s), n in sorted(statuses.items())))
        assert sent >= 5000
        assert len(taken) > 500, "too few generated requests were valid to say much about Kafka"
        seen = loop.run_until_complete(tail.read(lambda got: set(taken) <= {e.tracking_code for e in got}, 60))
        on_kafka: dict[str, list] = {}
        for event in seen:
            on_kafka.setdefault(event.tracking_code, []).append(event)
        missing = set(taken) - set(on_kafka)
        assert not missing, f"{len(missing)} accepted requests are not on Kafka, e.g. {sorted(missing)[:5]}"
        doubled = {code: len(on_kafka[code]) for code in taken if len(on_kafka[code]) > 1}
        assert not doubled, f"published more than once: {doubled}"
        assert all(on_kafka[code][0].channel == channel for code, channel in taken.items())
        stuck = loop.run_until_complete(_unprocessed_zalo_events(pg_port, intake_database))
        assert stuck == 0, "every recorded Zalo event must have gone through the dialogue"
    finally:
        loop.run_until_complete(tail.close())
        loop.close()


async def _unprocessed_zalo_events(pg_port: int, database: str, wait: float = 15.0) -> int:
    conn = await asyncpg.connect(f"postgresql://mesh@127.0.0.1:{pg_port}/{database}")
    try:
        deadline = time.monotonic() + wait
        while True:
            stuck = await conn.fetchval("SELECT count(*) FROM zalo_events WHERE processed_at IS NULL")
            if stuck == 0 or time.monotonic() > deadline:
                return stuck
            await asyncio.sleep(0.5)
    finally:
        await conn.close()

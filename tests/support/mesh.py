"""The running mesh for end-to-end and fault tests: the four services and the district client as
real processes on the suite's Kafka and PostgreSQL, with their own databases and ports."""

import asyncio
import inspect
import json
import os
import sys
import time
from pathlib import Path

import httpx

from tests.support.databases import fresh_database
from tests.support.otlp import TraceReceiver

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "deploy" / "local"))

from contracts import topics  # noqa: E402
from mesh import Mesh, die_with_parent, park_group_at_end  # noqa: E402

TOKENS = {"council": "test-council-token", "front": "test-front-token", "centre": "test-centre-token"}
# MESH_TEST_PORT_BASE lets two suites run side by side on one machine.
BASE = int(os.environ.get("MESH_TEST_PORT_BASE", "18000"))


def build_mesh(kafka_bootstrap: str, pg_port: int, admin_dsn: str, log_dir: Path,
               traces: TraceReceiver | None, base: int = BASE, extra_env: dict[str, str] | None = None,
               district: bool = True) -> Mesh:
    async def databases() -> dict[str, str]:
        return {s: await fresh_database(admin_dsn, f"e2e_{s}") for s in ("router", "notifier", "oversight", "intake")}

    names = asyncio.run(databases())
    # The shipped rules, but 'traffic' must reach its unit within 3 s and be resolved within 6 s,
    # so the escalation tests need not wait minutes.
    rules = json.loads((ROOT / "services/router/data/rules.json").read_text("utf-8"))
    rules["categories"]["traffic"] = {"unit": "area", "reach_within_minutes": 0.05, "resolve_within_hours": 6 / 3600}
    rules_file = log_dir / "rules-fast.json"
    rules_file.write_text(json.dumps(rules), "utf-8")
    suffix = names["router"].rsplit("_", 1)[1]

    async def park() -> None:
        # The topics are shared with the rest of the suite: this mesh starts from their ends.
        for group, names_ in ((f"router-{suffix}", (topics.INTAKE_REQUESTS,)),
                              (f"router-{suffix}-responses", (topics.UNIT_RESPONSES,)),
                              (f"notifier-{suffix}", (topics.UNIT_ASSIGNMENTS, topics.CASE_EVENTS)),
                              (f"oversight-{suffix}", (topics.CASE_EVENTS, topics.NOTIFY_DELIVERIES))):
            await park_group_at_end(kafka_bootstrap, group, *names_)

    parked_at = time.time()
    asyncio.run(park())
    env = {
        # The suite's own, whatever the caller's environment names (a CI image's PGHOST, PGPASSWORD).
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "PGHOST": "127.0.0.1", "PGPORT": str(pg_port), "PGUSER": "mesh",
        "PGPASSWORD": "",
        "ROUTER_PG_DATABASE": names["router"], "NOTIFIER_PG_DATABASE": names["notifier"],
        "OVERSIGHT_PG_DATABASE": names["oversight"], "INTAKE_PG_DATABASE": names["intake"],
        # Every test request comes from 127.0.0.1; the per-sender limits have tests of their own.
        "INTAKE_SENDER_LIMIT": "1000000",
        "ROUTER_GROUP_ID": f"router-{suffix}", "NOTIFIER_GROUP_ID": f"notifier-{suffix}",
        "OVERSIGHT_GROUP_ID": f"oversight-{suffix}",
        "OVERSIGHT_TOKEN_COUNCIL": TOKENS["council"], "OVERSIGHT_TOKEN_FRONT": TOKENS["front"],
        "OVERSIGHT_TOKEN_CENTRE": TOKENS["centre"], "OVERSIGHT_AUDIT_KEY": f"test-audit-key-{suffix}",
        "INTAKE_TRACKING_CODE_KEY": f"test-tracking-code-key-{suffix}",
        # The district client takes only the notifier's signed webhooks (examples/district_client.py).
        "NOTIFIER_WEBHOOK_SIGNING_KEY": f"test-webhook-key-{suffix}",
        # The district client only takes webhooks here; the tests answer for the units themselves.
        "DISTRICT_UNITS": "none",
        "OTEL_TRACES_EXPORTER": "otlp" if traces else "none", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_ENDPOINT": traces.endpoint if traces else "", "OTEL_BSP_SCHEDULE_DELAY": "200",
        "NOTIFIER_BACKOFF_BASE_SECONDS": "0.05",
        "ROUTER_RULES_FILE": str(rules_file), "ROUTER_TIMER_POLL_SECONDS": "0.2",
        "ROUTER_ESCALATE_REACH_STEP_SECONDS": "2", "ROUTER_ESCALATE_RESOLVE_STEP_SECONDS": "2",
    }
    ports = {name: base + offset for name, offset in (("intake", 1), ("router", 2), ("oversight", 3), ("notifier", 4))}
    mesh = Mesh({**env, **(extra_env or {})}, log_dir, ports=ports, district_port=base + 5 if district else None,
                gateways_port=base + 6 if district else None)
    mesh.env.update(extra_env or {})  # what the caller says wins over the defaults Mesh fills in
    mesh.parked_at = parked_at  # where this mesh's own traffic starts on the shared topics
    return mesh


def wait_for(check, timeout: float = 30.0, interval: float = 0.2, what: str = "condition"):
    """Poll ``check()`` until it returns something truthy; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last saw {last!r}")


async def eventually(check, timeout: float, what: str, interval: float = 0.1):
    """:func:`wait_for` for a test that runs on an event loop: polls without blocking it; ``check``
    may return an awaitable (a query), which is awaited."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(interval)


def oversight_get(mesh: Mesh, path: str, role: str | None = "centre", timeout: float = 10) -> httpx.Response:
    headers = {"Authorization": f"Bearer {TOKENS[role]}"} if role else {}
    return httpx.get(mesh.url("oversight") + path, headers=headers, timeout=timeout)


def warm_up(mesh: Mesh, timeout: float = 120) -> None:
    """Send one request through and wait until oversight shows it routed: the consumer groups have
    their partitions (on a new broker the first group join also creates Kafka's offsets topic)."""
    body = {"full_name": "Khởi động", "phone": "0909000000", "address": "45 Lê Văn Sỹ, Phường 13, Quận Phú Nhuận",
            "category": "other", "description": "warm-up request", "is_public": False}
    answer = wait_for(lambda: _post_ok(mesh, body), timeout, what="intake to accept a request")
    wait_for(lambda: oversight_get(mesh, f"/v1/cases/{answer['case_id']}").status_code == 200, timeout, 0.5,
             what="the warm-up request to reach oversight")


def _post_ok(mesh: Mesh, body: dict) -> dict | None:
    r = httpx.post(mesh.url("intake") + "/v1/channels/web/requests", json=body,
                   headers={"Idempotency-Key": "warm-up"}, timeout=15)
    return r.json() if r.status_code == 202 else None

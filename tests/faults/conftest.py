"""The fault suite's mesh: real processes on the suite's own Kafka and PostgreSQL, which these
tests kill and restart (``deploy/local/kafka.sh`` and ``postgres.sh`` with the suite's
environment), and a stand-in that records every message the notifier sends."""

import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.mesh import build_mesh, warm_up
from tests.support.standin import StandIn

ROOT = Path(__file__).resolve().parents[2]


class Infra:
    """Kafka and PostgreSQL as `make test` started them, to crash and bring back: the suite's own
    (its state directory and ports), never the demo's, however pytest was started."""

    def __init__(self, kafka_port: int, pg_port: int):
        self.kafka_port, self.pg_port = kafka_port, pg_port
        self.env = {**os.environ, "MESH_STATE_DIR": os.environ.get("MESH_STATE_DIR", str(ROOT / ".local" / "test")),
                    "KAFKA_PORT": str(kafka_port), "PGPORT": str(pg_port),
                    "KAFKA_CONTROLLER_PORT": os.environ.get("KAFKA_CONTROLLER_PORT", "19093")}

    def _run(self, script: str, *args: str) -> None:
        subprocess.run([str(ROOT / "deploy" / "local" / script), *args], check=True, env=self.env,
                       stdout=subprocess.DEVNULL, timeout=180)

    @staticmethod
    def _gone(port: int, what: str) -> None:
        """The scripts say "not running" and succeed when they find nothing to kill: a crash that
        killed nothing would leave the scenario testing nothing."""
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                probe.settimeout(0.5)
                if probe.connect_ex(("127.0.0.1", port)) != 0:
                    return
            time.sleep(0.1)
        raise AssertionError(f"{what} still answers on port {port} after it was killed")

    def crash_kafka(self) -> None:
        self._run("kafka.sh", "kill")
        self._gone(self.kafka_port, "Kafka")

    def start_kafka(self) -> None:
        self._run("kafka.sh", "start")
        self._run("kafka.sh", "wait")

    def crash_postgres(self) -> None:
        self._run("postgres.sh", "kill")
        self._gone(self.pg_port, "PostgreSQL")

    def start_postgres(self) -> None:
        self._run("postgres.sh", "start")


@pytest.fixture(scope="module")
def infra(kafka_bootstrap, pg_port):
    return Infra(int(kafka_bootstrap.rsplit(":", 1)[1]), pg_port)


@pytest.fixture(scope="module")
def stand_in():
    server = StandIn()
    yield server
    server.close()


@pytest.fixture(scope="module")
def fault_mesh(kafka_bootstrap, pg_port, pg_admin_dsn, stand_in, tmp_path_factory):
    base = int(os.environ.get("MESH_TEST_PORT_BASE", "18000")) + 100
    mesh = build_mesh(kafka_bootstrap, pg_port, pg_admin_dsn, tmp_path_factory.mktemp("fault-logs"), None, base=base,
                      district=False, extra_env={
                          "NOTIFIER_UNIT_WEBHOOK_URL": stand_in.url + "/units/{unit_id}/assignments",
                          "NOTIFIER_SMS_GATEWAY_URL": stand_in.url + "/sms",
                          "NOTIFIER_PUSH_GATEWAY_URL": stand_in.url + "/push",
                          "NOTIFIER_ZALO_API_URL": stand_in.url + "/zalo", "NOTIFIER_ZALO_ACCESS_TOKEN": "fault-token",
                          "NOTIFIER_SMTP_HOST": "127.0.0.1", "NOTIFIER_SMTP_PORT": str(stand_in.smtp_port),
                          # A send cut off by a crash is retried when its lease runs out.
                          "NOTIFIER_LEASE_SECONDS": "9", "NOTIFIER_SEND_TIMEOUT_SECONDS": "5",
                      })
    try:
        mesh.start_all()
        warm_up(mesh)
        yield mesh
    finally:
        mesh.stop_all()

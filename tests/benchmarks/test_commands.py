"""The README's benchmark commands still run and still report what they promise.

Each script starts the mesh on the suite's Kafka and PostgreSQL, sends a few seconds of load and
reports. The figures themselves are not judged here (speed is measured by the benchmarks, never
by the suite); that every accepted request is accounted for, and that the figures come out, is.
A benchmark that no longer starts was found before only when somebody next ran it.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.e2e, pytest.mark.slow]


def bench(script: str, *args: str, kafka_bootstrap: str, pg_port: int) -> subprocess.CompletedProcess:
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "PGPORT": str(pg_port)}
    done = subprocess.run([sys.executable, str(ROOT / "bench" / script), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{script} failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    return done


def test_the_end_to_end_benchmark_accounts_for_every_request(kafka_bootstrap, pg_port, tmp_path):
    figures_file = tmp_path / "e2e.json"
    done = bench("bench_e2e.py", "--rates", "20", "--seconds", "3", "--warmup", "0", "--pipe-messages", "500",
                 "--json", str(figures_file), kafka_bootstrap=kafka_bootstrap, pg_port=pg_port)
    figures = json.loads(figures_file.read_text())
    assert figures["ceiling"] > 0 and figures["routers"] == 1
    [run] = figures["results"]
    # 20 requests a second for 3 s: each answered 202, assigned, visible in oversight, its citizen told.
    assert (run["accepted"], run["completed"], run["told"], run["errors"]) == (60, 60, 60, {})
    for path in ("http_202_ms", "to_assignment_ms", "on_kafka_ms", "to_decision_ms", "decision_to_published_ms",
                 "to_oversight_ms", "to_citizen_ms"):
        assert set(run[path]) >= {"p50", "p99", "p99.9"}, path
    assert set(run["services"]) == {"intake", "router", "oversight", "notifier"}
    assert all(s["peak_rss_mib"] > 0 and s["cpu_cores"] > 0 for s in run["services"].values())
    assert "of the bare-pipe ceiling" in done.stdout


def test_the_soak_reports_memory_over_time_where_the_heap_grew_and_drains(kafka_bootstrap, pg_port):
    done = bench("soak.py", "--rate", "10", "--minutes", "0.25", "--every", "5", "--heap",
                 kafka_bootstrap=kafka_bootstrap, pg_port=pg_port)
    rows = [line.split() for line in done.stdout.splitlines() if re.match(r"\s+\d+\.\d\s", line)]
    assert len(rows) >= 3, done.stdout  # a row every 5 s for 15 s
    assert all(int(mib) > 0 for row in rows for mib in row[1:5]), done.stdout  # the four services' memory
    accepted, arrived = map(int, re.search(r"(\d+) accepted, (\d+) of them in oversight", done.stdout).groups())
    assert accepted >= 150 and arrived == accepted, done.stdout
    for service in ("intake", "router", "oversight", "notifier"):  # where each one's heap grew, by --heap
        assert re.search(rf"{service}: traced memory [\d.]+ MiB, [+-][\d.]+ MiB since the first snapshot;"
                         r" where it grew most:\n +[+-]\d+ KiB in +[+-]\d+ blocks, allocated at:\n +\S+:\d+",
                         done.stdout), done.stdout

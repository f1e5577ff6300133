#!/usr/bin/env bash
# `make run`: the services on top of the infrastructure that up.sh started; Ctrl-C stops the
# services, then the infrastructure. `run.sh stop` stops a running mesh (used by `make down`).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
if [[ "${1:-run}" == "stop" ]]; then
  exec .venv/bin/python deploy/local/mesh.py stop
fi
# A second `make run` would find the first's services on its ports and, leaving, stop the Kafka and
# PostgreSQL the first is using: it stops here instead, before it owns anything.
if .venv/bin/python deploy/local/mesh.py running; then exit 1; fi
trap 'deploy/local/down.sh' EXIT
# Ctrl-C or a TERM for the whole process group reaches this shell at once: it hands the stop to
# mesh.py and waits until the services are down before the EXIT trap stops Kafka and PostgreSQL,
# so they commit and leave their consumer groups on a live broker.
.venv/bin/python deploy/local/mesh.py run &
mesh=$!
trap 'kill -TERM "$mesh" 2>/dev/null || true' TERM INT
while kill -0 "$mesh" 2>/dev/null; do wait "$mesh" || true; done

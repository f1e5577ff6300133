#!/usr/bin/env bash
# `make run`: the services on top of the infrastructure that up.sh started; Ctrl-C stops the
# services, then the infrastructure. `run.sh stop` stops a running mesh (used by `make down`).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
if [[ "${1:-run}" == "stop" ]]; then
  exec .venv/bin/python deploy/local/mesh.py stop
fi
trap 'deploy/local/down.sh' EXIT
.venv/bin/python deploy/local/mesh.py run

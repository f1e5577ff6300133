#!/usr/bin/env bash
# Brings the local (no-Docker) infrastructure up: installs what is missing, starts Kafka and
# PostgreSQL (data under <root>/.local/) and waits until both accept connections. Idempotent.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# A failed or interrupted start leaves nothing running: Kafka is started detached (setsid), so
# Ctrl-C does not reach it, and a half-started broker would hold its ports for the next run.
undo() { "$HERE/down.sh" >/dev/null 2>&1 || true; exit "$1"; }
trap 'undo 1' ERR
trap 'undo 130' INT TERM
"$HERE/install.sh"
"$HERE/kafka.sh" start          # boots in the background while PostgreSQL starts
"$HERE/postgres.sh" start       # waits itself, then ensures role mesh + databases
"$HERE/kafka.sh" wait
trap - ERR INT TERM

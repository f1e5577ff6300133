#!/usr/bin/env bash
# Brings the local (no-Docker) infrastructure up: installs what is missing, starts Kafka and
# PostgreSQL (data under <root>/.local/) and waits until both accept connections. Idempotent.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
"$HERE/install.sh"
# A failed or interrupted start leaves running only what was running before it: Kafka is started
# detached (setsid), so Ctrl-C does not reach it, and a half-started broker would hold its ports for
# the next run. What another run had started (a second `make run` beside the first) is left alone.
kafka_was_up=0; "$HERE/kafka.sh" status >/dev/null 2>&1 && kafka_was_up=1
postgres_was_up=0; "$HERE/postgres.sh" status >/dev/null 2>&1 && postgres_was_up=1
undo() {
  ((kafka_was_up)) || "$HERE/kafka.sh" stop >/dev/null 2>&1 || true
  ((postgres_was_up)) || "$HERE/postgres.sh" stop >/dev/null 2>&1 || true
  exit "$1"
}
trap 'undo 1' ERR
trap 'undo 130' INT TERM
"$HERE/kafka.sh" start          # boots in the background while PostgreSQL starts
"$HERE/postgres.sh" start       # waits itself, then ensures role mesh + databases
"$HERE/kafka.sh" wait
trap - ERR INT TERM

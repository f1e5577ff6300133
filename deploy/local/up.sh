#!/usr/bin/env bash
# Brings the local (no-Docker) infrastructure up: installs what is missing, starts Kafka and
# PostgreSQL (data under <root>/.local/) and waits until both accept connections. Idempotent.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
"$HERE/install.sh"
"$HERE/kafka.sh" start          # boots in the background while PostgreSQL starts
"$HERE/postgres.sh" start       # waits itself, then ensures role mesh + databases
"$HERE/kafka.sh" wait

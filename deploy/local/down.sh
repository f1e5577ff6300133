#!/usr/bin/env bash
# Stops the local (no-Docker) infrastructure started by up.sh; data under <root>/.local/ is kept.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
rc=0
"$HERE/kafka.sh" stop || rc=$?
"$HERE/postgres.sh" stop || rc=$?
exit "$rc"

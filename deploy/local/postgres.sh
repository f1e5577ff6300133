#!/usr/bin/env bash
# Local PostgreSQL cluster for development and CI, without Docker, from Debian's postgresql
# packages (install.sh). PostgreSQL refuses to run as root, so run as root the server runs as
# Debian's `postgres` system user, and run as anyone else, as that user. Loopback only, trust auth
# (no passwords, but for one test role that logs in over SCRAM: oversight_reader_checked), durable
# (fsync on).
#
#   deploy/local/postgres.sh start    # initdb once, start, ensure role `mesh` + its databases
#   deploy/local/postgres.sh wait     # block until it accepts connections (<= PG_WAIT_SECS, 60)
#   deploy/local/postgres.sh status   # exit 0 if running
#   deploy/local/postgres.sh stop     # pg_ctl stop -m fast
#   deploy/local/postgres.sh wipe     # stop, and delete the cluster wherever it lives (the suite's fresh start;
#                                     # the demo's only with --demo-too, as make clean does)
#
# Env: PGPORT (55432), PG_WAIT_SECS (60).
# Cluster in <root>/.local/pg/data, socket in <root>/.local/pg/run, log <root>/.local/pg/postgres.log.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PGBASE="${MESH_STATE_DIR:-$ROOT/.local}/pg"
# Run as root, PostgreSQL runs as `postgres`, which must reach its data folder. When the project
# sits where that user cannot pass (a clone under /root, say), the cluster lives in a folder named
# after the project. Run as anyone else, it runs as that user, in the project's own folder.
if [[ $(id -u) -eq 0 ]] && ! (cd / && runuser -u postgres -- test -x "$ROOT") 2>/dev/null; then
  PGBASE="/var/lib/mesh1022/$(printf %s "$PGBASE" | sha1sum | cut -c1-12)/pg"
  mkdir -p "$PGBASE" && chmod a+rx /var/lib/mesh1022 "$(dirname "$PGBASE")"
  mkdir -p "$ROOT/.local" && ln -sfn "$PGBASE" "$ROOT/.local/pg-elsewhere"
fi
PGDATA_DIR="$PGBASE/data"
PGRUN="$PGBASE/run"
PGLOG="$PGBASE/postgres.log"
PORT="${PGPORT:-55432}"
PG_WAIT_SECS="${PG_WAIT_SECS:-60}"
PGUSER_OS="postgres"
[[ $(id -u) -eq 0 ]] || PGUSER_OS="$(id -un)"  # PostgreSQL refuses root only
DB_ROLE="mesh"
DATABASES=(router notifier oversight intake)

die() { echo "postgres.sh: ERROR: $*" >&2; exit 1; }
log() { echo "postgres.sh: $*"; }

PGBIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
[[ -n "$PGBIN" && -x "$PGBIN/postgres" ]] \
  || die "no PostgreSQL server binaries under /usr/lib/postgresql/*/bin; run deploy/local/install.sh"
id -u "$PGUSER_OS" >/dev/null 2>&1 || die "system user '$PGUSER_OS' missing (Debian's postgresql package creates it)"

# Run a command as the server's user, from a directory it can enter, with a clean-ish locale.
as_pg() {
  if [[ $(id -u) -eq 0 ]]; then
    (cd / && LC_ALL=C.UTF-8 runuser -u "$PGUSER_OS" -- "$@")
  else
    (cd / && LC_ALL=C.UTF-8 "$@")
  fi
}
# Give files to the server's user: root makes them for it; anyone else makes them as itself.
own_pg() { [[ $(id -u) -ne 0 ]] || chown "$PGUSER_OS:" "$@"; }
pg_ctl_() { as_pg "$PGBIN/pg_ctl" -D "$PGDATA_DIR" "$@"; }
psql_() { as_pg "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PGRUN" -p "$PORT" -U postgres "$@"; }
is_running() { [[ -f "$PGDATA_DIR/PG_VERSION" ]] && pg_ctl_ status >/dev/null 2>&1; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

prepare_dirs() {
  if [[ $(id -u) -eq 0 ]]; then
    mkdir -p "$PGBASE" "$PGRUN"
    mkdir -p "$ROOT/.local" && chmod a+x "$ROOT/.local"  # ours; the postgres user only passes through
    chown "$PGUSER_OS:" "$PGBASE" "$PGRUN"
    [[ -d "$PGDATA_DIR" ]] && chown -R "$PGUSER_OS:" "$PGDATA_DIR"
    touch "$PGLOG" && chown "$PGUSER_OS:" "$PGLOG"
  else
    mkdir -p "$PGBASE" "$PGRUN" && touch "$PGLOG"
  fi
  # Every directory from / down to .local/pg must be traversable by the postgres user.
  local d="" part
  IFS='/' read -r -a parts <<<"${PGBASE#/}"
  for part in "" "${parts[@]}"; do
    d="${d%/}/$part"
    as_pg test -x "$d" \
      || die "directory '$d' is not traversable by user '$PGUSER_OS' (PostgreSQL cannot run as root and needs to reach $PGDATA_DIR). Fix: chmod o+x '$d', or clone the project somewhere else."
  done
  local sock="$PGRUN/.s.PGSQL.$PORT"
  ((${#sock} <= 103)) || die "socket path '$sock' is ${#sock} chars, over the Unix-socket limit (~103); move the project to a shorter path"
}

init_cluster() {
  [[ -f "$PGDATA_DIR/PG_VERSION" ]] && return 0
  local locale=C
  locale -a 2>/dev/null | grep -qix 'c\.utf-\?8' && locale=C.UTF-8
  log "initdb $PGDATA_DIR ($("$PGBIN/postgres" --version), locale $locale)"
  rm -rf "$PGDATA_DIR.tmp"
  mkdir -p "$PGDATA_DIR.tmp" && own_pg "$PGDATA_DIR.tmp" && chmod 700 "$PGDATA_DIR.tmp"
  as_pg "$PGBIN/initdb" -D "$PGDATA_DIR.tmp" -U postgres -E UTF8 --locale="$locale" \
    --auth=trust >"$PGBASE/initdb.log" 2>&1 || { tail -n 20 "$PGBASE/initdb.log" >&2; die "initdb failed"; }
  # Loopback only, trust but for the one test role: a dev cluster; no passwords live in the repo.
  cat >"$PGDATA_DIR.tmp/pg_hba.conf" <<'EOF'
# Written by deploy/local/postgres.sh: loopback-only development cluster.
# TYPE  DATABASE     USER  ADDRESS        METHOD
# One role logs in with a password: the tests of oversight giving its read-only role one.
host    all          oversight_reader_checked   127.0.0.1/32   scram-sha-256
local   all          all                  trust
host    all          all   127.0.0.1/32   trust
host    all          all   ::1/128        trust
local   replication  all                  trust
host    replication  all   127.0.0.1/32   trust
host    replication  all   ::1/128        trust
EOF
  echo "include_if_exists = 'mesh.conf'" >>"$PGDATA_DIR.tmp/postgresql.conf"
  own_pg "$PGDATA_DIR.tmp/pg_hba.conf"
  mv "$PGDATA_DIR.tmp" "$PGDATA_DIR"      # only a complete cluster gets the final name
}

write_config() {
  cat >"$PGDATA_DIR/mesh.conf" <<EOF
# Written by deploy/local/postgres.sh on every start; edit the script, not this file.
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$PGRUN'
max_connections = 300
shared_buffers = 256MB
fsync = on
synchronous_commit = on
logging_collector = off
# New tables are analyzed within seconds, not a minute: until then a prepared statement's plan,
# made while its table was empty, reads the whole table (the router's duplicate lookup, oversight's
# and intake's lookups by id: 0.03-0.07 cores at 200 req/s, measured). A few databases: cheap.
autovacuum_naptime = 5s
# After a checkpoint, the first change to each page writes the whole page to the WAL. The event
# store's and the read models' indexes are keyed by random UUIDs, so nearly every insert touches a
# page not yet written since the last one: at the default 1 GB, checkpoints came every minute at
# 100 req/s and the WAL rose to 95 KiB a request within 20 minutes (bench/soak.py). Fewer
# checkpoints, and their page images compressed (BENCHMARKS.md, "WAL"). Crash recovery replays
# the WAL since the last completed checkpoint: up to about max_wal_size under steady load.
max_wal_size = 4GB
checkpoint_timeout = 15min
wal_compression = lz4
log_line_prefix = '%m [%p] %q%u@%d '
EOF
  own_pg "$PGDATA_DIR/mesh.conf"
}

ensure_databases() {
  psql_ -d postgres -c "DO \$\$ BEGIN
      IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$DB_ROLE') THEN
        CREATE ROLE $DB_ROLE LOGIN SUPERUSER;
      END IF; END \$\$;"
  # The same file compose and a managed PostgreSQL are set up with. Read from stdin: the postgres
  # user may not be able to read the checkout.
  psql_ -d postgres < "$ROOT/deploy/postgres-init.sql"
}

cmd_start() {
  prepare_dirs
  init_cluster
  # A postmaster that was just killed can still look alive for a moment: let that settle.
  for _ in $(seq 1 20); do
    is_running || break
    "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PORT" -d postgres -U postgres && break
    sleep 0.25
  done
  if is_running; then
    log "already running on 127.0.0.1:$PORT"
  else
    port_open "$PORT" && die "port $PORT on 127.0.0.1 is already in use by another process (a system cluster? see pg_lsclusters; or set PGPORT)"
    write_config
    log "starting on 127.0.0.1:$PORT (log $PGLOG)"
    # A connection this machine made *from* the port (it lies in Linux's ephemeral range) holds it
    # in TIME_WAIT for up to a minute after it closed, and the bind fails although nothing
    # listens there: wait that out rather than fail the run.
    local attempt
    for attempt in $(seq 1 12); do
      pg_ctl_ -l "$PGLOG" -w -t "$PG_WAIT_SECS" start >/dev/null && break
      if ((attempt < 12)) && tail -n 8 "$PGLOG" | grep -q "Address already in use" && ! port_open "$PORT"; then
        log "port $PORT is held by a closed connection's TIME_WAIT; trying again in 10 s"
        sleep 10
        continue
      fi
      tail -n 30 "$PGLOG" >&2
      die "pg_ctl start failed"
    done
  fi
  cmd_wait >/dev/null
  ensure_databases
  log "ready: postgresql://$DB_ROLE@127.0.0.1:$PORT/{$(IFS=,; echo "${DATABASES[*]}")}"
}

cmd_wait() {
  local deadline=$((SECONDS + PG_WAIT_SECS))
  while ((SECONDS < deadline)); do
    if "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PORT" -d postgres -U postgres; then
      log "ready on 127.0.0.1:$PORT"; return 0
    fi
    is_running || { tail -n 30 "$PGLOG" >&2 || true; die "server is not running"; }
    sleep 0.5
  done
  tail -n 30 "$PGLOG" >&2 || true
  die "not ready on 127.0.0.1:$PORT after ${PG_WAIT_SECS}s"
}

cmd_stop() {
  if is_running; then
    log "stopping"
    # Another stop at the same moment (make down's, and run.sh's own on its way out) may have
    # taken the pid file first: stopped all the same.
    pg_ctl_ stop -m fast -w -t 60 >/dev/null || ! is_running || die "could not stop the server"
    log "stopped"
  else
    log "not running"
  fi
}

# A crash, for the fault tests: immediate shutdown, so the next start runs crash recovery.
cmd_kill() {
  if is_running; then
    pg_ctl_ stop -m immediate -w -t 60 >/dev/null
    log "killed (immediate shutdown)"
  else
    log "not running"
  fi
}

# Stopped and deleted where it is, which may be outside the state folder (above): deleting that
# folder alone left a moved cluster, its databases and its settings, to the next run.
cmd_wipe() {
  [[ -n "${MESH_STATE_DIR:-}" || "${2:-}" == "--demo-too" ]] \
    || die "wipe is for a state folder of its own (MESH_STATE_DIR): not the demo's cases (make clean says --demo-too)"
  cmd_stop
  rm -rf "$PGBASE"
  log "wiped $PGBASE"
}

cmd_status() {
  if is_running; then log "running on 127.0.0.1:$PORT"; return 0; fi
  log "not running"; return 3
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  kill) cmd_kill ;;
  status) cmd_status ;;
  wait) cmd_wait ;;
  wipe) cmd_wipe "$@" ;;
  *) echo "usage: $0 start|stop|kill|status|wait|wipe" >&2; exit 2 ;;
esac

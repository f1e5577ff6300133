#!/usr/bin/env bash
# Installs what the local (no-Docker) infrastructure needs, and only what is missing:
#   - PostgreSQL server binaries from Debian's packages (apt), without a system cluster;
#   - the Kafka broker's jars from Maven Central (deploy/local/kafka/pom.xml) into <root>/.local/kafka/libs.
# Checks Java >= 17 (Kafka 4 brokers need it). A second run downloads nothing and needs no network.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
POM="$HERE/kafka/pom.xml"
LIBS="$ROOT/.local/kafka/libs"
MARKER="$LIBS/.installed"
PGPORT="${PGPORT:-55432}"

die() { echo "install.sh: ERROR: $*" >&2; exit 1; }
log() { echo "install.sh: $*"; }

apt_updated=0
apt_install() {
  [[ $(id -u) -eq 0 ]] || die "need root to apt-get install $*"
  if ((apt_updated == 0)); then
    log "apt-get update"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq || die "apt-get update failed"
    apt_updated=1
  fi
  log "apt-get install $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@" \
    || die "apt-get install $* failed"
}

# --- Java >= 17 --------------------------------------------------------------------------------
if [[ -n "${JAVA_HOME:-}" && -x "$JAVA_HOME/bin/java" ]]; then JAVA="$JAVA_HOME/bin/java"; else JAVA="java"; fi
command -v "$JAVA" >/dev/null \
  || die "java not found. Kafka 4 needs Java 17 or newer: apt-get install openjdk-17-jre-headless (or set JAVA_HOME)"
java_spec="$("$JAVA" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java\.specification\.version = //p')"
java_major="${java_spec#1.}"; java_major="${java_major%%.*}"
[[ "$java_major" =~ ^[0-9]+$ && "$java_major" -ge 17 ]] \
  || die "Java $java_spec found at $(command -v "$JAVA"), but Kafka 4 needs Java 17 or newer (set JAVA_HOME to a JDK 17+)"

# --- PostgreSQL server (Debian packages) ---------------------------------------------------------
if ! compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null; then
  [[ $(id -u) -eq 0 ]] || die "PostgreSQL's server is not installed, and installing it needs root: run once as root"
  # We run our own cluster (postgres.sh): tell postgresql-common not to create the system
  # cluster "main", and keep apt's post-install from starting services.
  mkdir -p /etc/postgresql-common/createcluster.d
  echo 'create_main_cluster = false' >/etc/postgresql-common/createcluster.d/50-mesh-no-main-cluster.conf
  policy_added=0
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    policy_added=1
  fi
  if ((policy_added)); then trap 'rm -f /usr/sbin/policy-rc.d' EXIT; fi
  apt_install postgresql
  if ((policy_added)); then rm -f /usr/sbin/policy-rc.d; trap - EXIT; fi
  compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null || die "postgresql installed but no /usr/lib/postgresql/*/bin/postgres"
fi
# Whatever happened before (e.g. a preinstalled package with its "main" cluster): no system
# cluster may hold our port.
if command -v pg_lsclusters >/dev/null; then
  while read -r ver name port status _; do
    if [[ "$port" == "$PGPORT" && "$status" == online* ]]; then
      log "stopping system cluster $ver/$name, it occupies port $PGPORT"
      pg_ctlcluster "$ver" "$name" stop || die "could not stop system cluster $ver/$name on port $PGPORT"
    fi
  done < <(pg_lsclusters -h 2>/dev/null || true)
fi
log "PostgreSQL: $(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"

# --- Kafka jars (Maven Central) ----------------------------------------------------------------
want="$(sha256sum "$POM" | cut -d' ' -f1)"
if [[ -f "$MARKER" && "$(head -n 1 "$MARKER")" == "$want" ]] && compgen -G "$LIBS/kafka_2.13-*.jar" >/dev/null; then
  log "Kafka jars present: $(sed -n 2p "$MARKER")"
else
  command -v mvn >/dev/null || apt_install maven
  log "fetching Kafka jars into $LIBS"
  rm -rf "$LIBS.tmp"
  mkdir -p "$LIBS.tmp"
  mvn -q -B -Dstyle.color=never -f "$POM" dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$LIBS.tmp" \
    || die "mvn could not gather the Kafka jars (see above)"
  kjar="$(cd "$LIBS.tmp" && ls kafka_2.13-*.jar 2>/dev/null | head -n 1)"
  [[ -n "$kjar" ]] || die "mvn ran but no kafka_2.13 jar landed in $LIBS.tmp"
  printf '%s\n%s\n' "$want" "${kjar%.jar}" >"$LIBS.tmp/.installed"
  rm -rf "$LIBS" && mv "$LIBS.tmp" "$LIBS"
  log "Kafka jars installed: ${kjar%.jar} ($(ls "$LIBS" | wc -l) jars)"
fi

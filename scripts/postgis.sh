#!/usr/bin/env bash
# Start (or reuse) a throwaway PostGIS for tests and benchmarks, then print its URL.
#
#   eval "$(scripts/postgis.sh --export)"   # sets RISKMAP_TEST_DATABASE_URL
#   scripts/postgis.sh                      # prints the URL on the last line of stdout
#
# Idempotent: when $RISKMAP_TEST_DATABASE_URL already reaches a PostGIS it only prints it;
# when the cluster under /tmp is up it only makes sure the test database exists. On a fresh
# Debian 12 machine, as root, it installs postgresql-15-postgis-3 (only when missing), creates
# a cluster owned by user postgres (trust auth on 127.0.0.1, fsync off: data is disposable)
# and a database with the postgis extension. Progress goes to stderr, the URL to stdout.
set -euo pipefail

PG_VERSION=15
PG_BIN=/usr/lib/postgresql/${PG_VERSION}/bin   # not /usr/local/bin/pg_ctl, which is unrelated
PG_ROOT=${RISKMAP_PG_ROOT:-/tmp/riskmap-pg}
PG_PORT=${RISKMAP_PG_PORT:-55432}
PG_DB=${RISKMAP_PG_DB:-riskmap_test}
PG_DATA=${PG_ROOT}/data
URL="postgresql+psycopg://postgres@127.0.0.1:${PG_PORT}/${PG_DB}"

log() { echo "postgis.sh: $*" >&2; }

emit() {
  if [[ ${1:-} == --export ]]; then
    echo "export RISKMAP_TEST_DATABASE_URL=$2"
  else
    echo "$2"
  fi
}

# libpq does not know SQLAlchemy's "+driver" suffix.
libpq_url() { echo "${1/+psycopg/}"; }

has_postgis() {
  psql "$(libpq_url "$1")" -XtAq -c "SELECT postgis_lib_version()" >/dev/null 2>&1
}

# Run a command as the cluster owner: postgres when we are root, ourselves otherwise.
as_owner() {
  if [[ $(id -u) == 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

if [[ -n ${RISKMAP_TEST_DATABASE_URL:-} ]] && has_postgis "$RISKMAP_TEST_DATABASE_URL"; then
  emit "${1:-}" "$RISKMAP_TEST_DATABASE_URL"
  exit 0
fi

if [[ ! -x ${PG_BIN}/initdb ]] \
  || [[ ! -f /usr/share/postgresql/${PG_VERSION}/extension/postgis.control ]]; then
  if [[ $(id -u) != 0 ]]; then
    log "PostgreSQL ${PG_VERSION} with PostGIS is not installed and we are not root:"
    log "  apt-get install -y postgresql-${PG_VERSION}-postgis-3"
    exit 1
  fi
  log "installing postgresql-${PG_VERSION}-postgis-3"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends "postgresql-${PG_VERSION}-postgis-3" >&2
fi

if [[ $(id -u) == 0 ]]; then
  id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql postgres
  mkdir -p "$PG_ROOT"
  chown postgres: "$PG_ROOT"
else
  mkdir -p "$PG_ROOT"
fi

# A half-made cluster (initdb interrupted) has no PG_VERSION file: start it over.
if [[ -d $PG_DATA && ! -f $PG_DATA/PG_VERSION ]]; then
  log "removing incomplete cluster $PG_DATA"
  rm -rf "$PG_DATA"
fi

if [[ ! -d $PG_DATA ]]; then
  log "creating cluster $PG_DATA (port $PG_PORT)"
  as_owner "$PG_BIN/initdb" -D "$PG_DATA" -U postgres --auth=trust --encoding=UTF8 \
    --locale=C.UTF-8 >/dev/null
  cat >>"$PG_DATA/postgresql.conf" <<EOF

# riskmap throwaway test cluster: speed over durability.
listen_addresses = '127.0.0.1'
port = ${PG_PORT}
unix_socket_directories = '${PG_ROOT}'
fsync = off
synchronous_commit = off
full_page_writes = off
max_wal_size = 4GB
shared_buffers = 512MB
maintenance_work_mem = 512MB
work_mem = 64MB
max_connections = 200
EOF
fi

ADMIN="postgresql://postgres@127.0.0.1:${PG_PORT}/postgres"
if ! psql "$ADMIN" -XtAq -c "SELECT 1" >/dev/null 2>&1; then
  log "starting cluster $PG_DATA"
  as_owner "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_ROOT/server.log" -w -t 60 start >/dev/null
fi

if [[ -z $(psql "$ADMIN" -XtAq -c "SELECT 1 FROM pg_database WHERE datname = '${PG_DB}'") ]]; then
  log "creating database $PG_DB"
  psql "$ADMIN" -Xq -v ON_ERROR_STOP=1 -c "CREATE DATABASE \"${PG_DB}\"" >&2
fi
psql "$(libpq_url "$URL")" -Xq -v ON_ERROR_STOP=1 \
  -c "SET client_min_messages = warning" -c "CREATE EXTENSION IF NOT EXISTS postgis" >&2

if ! has_postgis "$URL"; then
  log "PostGIS is still not reachable at $URL (see $PG_ROOT/server.log)"
  exit 1
fi
emit "${1:-}" "$URL"

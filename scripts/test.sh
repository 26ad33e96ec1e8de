#!/usr/bin/env bash
# The whole test suite, against real PostgreSQL and real NATS JetStream.
#
# Uses PostgreSQL on 127.0.0.1:5432 and NATS on 127.0.0.1:4222 when they
# answer; otherwise starts them from the installed binaries; otherwise stops
# and says what is missing. No test skips because a service is absent.
#
# Media tests use an S3-protocol server: moto's, installed from PyPI into a
# cache the first time and started here (or IGNY8_TEST_S3_URL).
# Override with IGNY8_TEST_DATABASE_URL / IGNY8_TEST_NATS_URL. Then runs the
# API contract tests (scripts/contract/run.sh; needs python3 and node, and
# PyPI and npm the first time, to install its pinned tools into a cache).
set -euo pipefail
cd "$(dirname "$0")/.."

export IGNY8_TEST_DATABASE_URL="${IGNY8_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}"
export IGNY8_TEST_NATS_URL="${IGNY8_TEST_NATS_URL:-nats://127.0.0.1:4222}"

say() { printf 'test.sh: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

wait_port() { # host port seconds
  for _ in $(seq 1 "$(( $3 * 10 ))"); do port_open "$1" "$2" && return 0; sleep 0.1; done
  return 1
}

ensure_postgres() {
  if port_open 127.0.0.1 5432; then return; fi
  say "PostgreSQL is not answering on 127.0.0.1:5432; trying to start it"
  if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
    for v in $(ls /etc/postgresql); do
      pg_ctlcluster --skip-systemctl-redirect "$v" main start || true
    done
  fi
  wait_port 127.0.0.1 5432 30 || die "PostgreSQL is required on 127.0.0.1:5432 and could not be started (install postgresql, or set IGNY8_TEST_DATABASE_URL)."
}

ensure_test_database() {
  command -v psql >/dev/null || return 0
  local db="${IGNY8_TEST_DATABASE_URL##*/}"; db="${db%%\?*}"
  local admin="${IGNY8_TEST_DATABASE_URL%/*}/postgres"
  if ! psql "$IGNY8_TEST_DATABASE_URL" -qtAc 'select 1' >/dev/null 2>&1; then
    say "creating database $db"
    psql "$admin" -qc "CREATE DATABASE \"$db\"" >/dev/null || die "cannot create database $db ($IGNY8_TEST_DATABASE_URL)"
  fi
  # Schemas left by interrupted earlier runs (each test makes its own).
  psql "$IGNY8_TEST_DATABASE_URL" -qtAc "select string_agg(format('DROP SCHEMA %I CASCADE', nspname), '; ') from pg_namespace where nspname ~ '^t_[0-9]+_[0-9]+_[0-9]+\$'" 2>/dev/null \
    | { read -r sql || true; [ -n "${sql:-}" ] && psql "$IGNY8_TEST_DATABASE_URL" -qc "$sql" >/dev/null 2>&1 || true; }
}

ensure_nats() {
  if port_open 127.0.0.1 4222; then return; fi
  say "NATS is not answering on 127.0.0.1:4222; trying to start it with JetStream"
  local bin
  bin="$(command -v nats-server || true)"; [ -z "$bin" ] && [ -x /usr/sbin/nats-server ] && bin=/usr/sbin/nats-server
  [ -n "$bin" ] || die "NATS with JetStream is required on 127.0.0.1:4222 and nats-server is not installed (apt-get install nats-server)."
  local dir="${TMPDIR:-/tmp}/igny8-nats"
  mkdir -p "$dir"
  nohup "$bin" -a 127.0.0.1 -p 4222 -js -sd "$dir" >"$dir/nats.log" 2>&1 &
  wait_port 127.0.0.1 4222 20 || die "nats-server did not start; see $dir/nats.log"
}

# The fault tests (gateway/tests/it/faults.rs) start, SIGKILL and restart
# their own PostgreSQL cluster and nats-server: they need the server binaries
# (not only a running service) and, as root, the postgres user to run as.
ensure_fault_tools() {
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 \
    || die "the fault tests need PostgreSQL's server binaries (initdb, postgres under /usr/lib/postgresql/<version>/bin): apt-get install postgresql"
  if [ "$(id -u)" = 0 ] && ! id -u postgres >/dev/null 2>&1; then
    die "the fault tests run PostgreSQL as the postgres user (it refuses root), and there is none: apt-get install postgresql creates it"
  fi
  command -v nats-server >/dev/null || [ -x /usr/sbin/nats-server ] \
    || die "the fault tests need nats-server: apt-get install nats-server"
}

# Media storage of the scale-out tests: a real S3-protocol server, moto's
# server mode (pinned, installed once into a cache venv from PyPI), on
# 127.0.0.1:$IGNY8_TEST_S3_PORT, with a fresh bucket per run.
MOTO_VERSION=5.2.5
ensure_s3() {
  if [ -n "${IGNY8_TEST_S3_URL:-}" ]; then return; fi
  local port="${IGNY8_TEST_S3_PORT:-5055}"
  local cache="${XDG_CACHE_HOME:-$HOME/.cache}/igny8-test"
  local venv="$cache/moto-$MOTO_VERSION"
  if ! port_open 127.0.0.1 "$port"; then
    if [ ! -x "$venv/bin/moto_server" ]; then
      say "installing moto[server]==$MOTO_VERSION (S3-protocol server for the media tests) into $venv"
      command -v python3 >/dev/null || die "the media tests need python3 (for moto's S3 server)"
      python3 -m venv "$venv" || die "cannot create $venv"
      "$venv/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION" \
        || die "cannot install moto[server] from PyPI; set IGNY8_TEST_S3_URL to an S3-compatible server instead"
    fi
    mkdir -p "$cache"
    nohup "$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$cache/moto.log" 2>&1 &
    wait_port 127.0.0.1 "$port" 30 || die "moto's S3 server did not start; see $cache/moto.log"
  fi
  local bucket="igny8-test-$$-$(date +%s)"
  curl -fsS -X PUT "http://127.0.0.1:$port/$bucket" >/dev/null || die "cannot create bucket $bucket on 127.0.0.1:$port"
  export IGNY8_TEST_S3_URL="s3://$bucket?endpoint=http://127.0.0.1:$port&region=us-east-1"
  export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-testing}" AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-testing}"
}

# The publisher's tests run against a real WordPress (Debian's 6.1 package
# under PHP's built-in server, its own MariaDB on a unix socket): installed
# and started by scripts/wordpress.sh, which writes the sites' URLs and
# Application Passwords to an env file read here.
ensure_wordpress() {
  local run="${IGNY8_WP_RUN:-${TMPDIR:-/tmp}/igny8-wordpress}"
  IGNY8_WP_RUN="$run" scripts/wordpress.sh start >&2 \
    || die "the publishing tests need a real WordPress and scripts/wordpress.sh could not start it (see its messages above)"
  [ -f "$run/env" ] || die "scripts/wordpress.sh did not write $run/env"
  # shellcheck disable=SC1091
  . "$run/env"
}

ensure_postgres
ensure_test_database
ensure_nats
ensure_fault_tools
ensure_s3
ensure_wordpress
say "PostgreSQL, NATS, S3 ($IGNY8_TEST_S3_URL) and WordPress ($IGNY8_TEST_WP_URL) are up; running cargo test"
cargo test --workspace --locked "$@"

# The API contract against the embedded server built by the tests above: an
# OpenAPI validator, a generated TypeScript client type-checked with
# --strict, and schemathesis --checks all (fuzzing and stateful phases).
# IGNY8_SKIP_CONTRACT=1 leaves it out (e.g. while iterating on one crate).
if [ "${IGNY8_SKIP_CONTRACT:-}" = 1 ]; then
  say "IGNY8_SKIP_CONTRACT=1: contract tests not run"
else
  say "running the API contract tests (scripts/contract/run.sh)"
  scripts/contract/run.sh target/debug/igny8
fi

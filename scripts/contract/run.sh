#!/usr/bin/env bash
# Contract tests of the IGNY8 HTTP API against its own OpenAPI document.
#
#   scripts/contract/run.sh PATH_TO_IGNY8_BINARY
#
# Starts `igny8 serve` on a free loopback port with a fresh data folder, then:
#   1. downloads /api/v1/openapi.json and validates it (openapi-spec-validator);
#   2. generates TypeScript types from it (openapi-typescript) and type-checks
#      scripts/contract/client.ts, an openapi-fetch client that reads the
#      response envelopes without casts (tsc --strict --noEmit);
#   3. seeds two accounts with data (seed.py) and runs schemathesis with every
#      check, through the coverage, fuzzing and stateful phases (and examples,
#      when the spec has any), configured by scripts/contract/schemathesis.toml
#      and hooks.py; summarize.py then groups the failures by check and cause;
#   4. checks the server log for panics.
# Every step runs even when an earlier one failed; the script prints a summary
# and exits non-zero when any step failed.
#
# Tools are pinned and installed once into a cache folder (a Python venv and
# an npm prefix); a rerun with the same pins installs nothing and needs no
# network.
#
# Environment:
#   CONTRACT_MAX_EXAMPLES  test cases per operation and phase (default 100)
#   CONTRACT_SEED          schemathesis seed, to replay a run
#   CONTRACT_TIMEOUT       hard limit of the schemathesis step in seconds (default 600)
#   CONTRACT_REPORT_DIR    keep the reports (NDJSON, JUnit), the spec, the
#                          generated types and the server log there
#   XDG_CACHE_HOME         where the tools are cached (default ~/.cache)
#   PYTHON                 interpreter for the venv (default python3, 3.10+)
set -euo pipefail

SCHEMATHESIS_VERSION=4.32.5
OPENAPI_SPEC_VALIDATOR_VERSION=0.9.0
OPENAPI_TYPESCRIPT_VERSION=7.13.0
OPENAPI_FETCH_VERSION=0.17.0
TYPESCRIPT_VERSION=5.9.3

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [ "$#" -ne 1 ]; then
  echo "usage: $0 PATH_TO_IGNY8_BINARY" >&2
  exit 2
fi
BIN="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
if [ ! -x "$BIN" ]; then
  echo "error: $1 is not an executable" >&2
  exit 2
fi

MAX_EXAMPLES="${CONTRACT_MAX_EXAMPLES:-100}"
ST_TIMEOUT="${CONTRACT_TIMEOUT:-600}"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/igny8-contract"
VENV="$CACHE/venv"
NPM_PREFIX="$CACHE/npm"
PYTHON="${PYTHON:-python3}"

RUN_START=$SECONDS
# hooks.py is imported by schemathesis: keep __pycache__ out of the repository.
export PYTHONDONTWRITEBYTECODE=1
log() { printf '\n==> %s\n' "$*"; }

# ---------------------------------------------------------------- results
STEP_NAMES=()
STEP_RESULTS=()
STEP_NOTES=()
record() { # record NAME PASS|FAIL NOTE
  STEP_NAMES+=("$1")
  STEP_RESULTS+=("$2")
  STEP_NOTES+=("$3")
}

# ---------------------------------------------------------------- cleanup
WORK="$(mktemp -d "${TMPDIR:-/tmp}/igny8-contract.XXXXXX")"
SERVER_PID=""
stop_server() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do
      kill -0 "$SERVER_PID" 2>/dev/null || break
      sleep 0.2
    done
    kill -9 "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=""
}
cleanup() {
  local status=$?
  stop_server
  if [ -n "${CONTRACT_REPORT_DIR:-}" ]; then
    mkdir -p "$CONTRACT_REPORT_DIR"
    cp -r "$WORK/reports" "$WORK/openapi.json" "$WORK/server.log" "$WORK/ts" "$WORK/schemathesis.toml" "$WORK/wfc.json" "$CONTRACT_REPORT_DIR"/ 2>/dev/null || true
    rm -f "$CONTRACT_REPORT_DIR/ts/node_modules" 2>/dev/null || true
  fi
  rm -rf "$WORK"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- tools
lock_cache() {
  mkdir -p "$CACHE"
  if command -v flock >/dev/null 2>&1; then
    exec 9>"$CACHE/install.lock"
    flock 9
  fi
}
unlock_cache() {
  if command -v flock >/dev/null 2>&1; then
    flock -u 9 || true
    exec 9>&-
  fi
}

py_version() {
  "$VENV/bin/python" -c 'import sys, importlib.metadata as m; print(m.version(sys.argv[1]))' "$1" 2>/dev/null || true
}

ensure_python_tools() {
  if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
  fi
  if [ "$(py_version schemathesis)" != "$SCHEMATHESIS_VERSION" ] \
    || [ "$(py_version openapi-spec-validator)" != "$OPENAPI_SPEC_VALIDATOR_VERSION" ]; then
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
      "schemathesis==$SCHEMATHESIS_VERSION" \
      "openapi-spec-validator==$OPENAPI_SPEC_VALIDATOR_VERSION"
  fi
}

npm_version() {
  node -p "require(process.argv[1]).version" "$NPM_PREFIX/node_modules/$1/package.json" 2>/dev/null || true
}

ensure_npm_tools() {
  mkdir -p "$NPM_PREFIX"
  if [ "$(npm_version openapi-typescript)" != "$OPENAPI_TYPESCRIPT_VERSION" ] \
    || [ "$(npm_version openapi-fetch)" != "$OPENAPI_FETCH_VERSION" ] \
    || [ "$(npm_version typescript)" != "$TYPESCRIPT_VERSION" ]; then
    [ -f "$NPM_PREFIX/package.json" ] || echo '{"private": true}' >"$NPM_PREFIX/package.json"
    npm install --prefix "$NPM_PREFIX" --no-audit --no-fund --save-exact --loglevel=error \
      "openapi-typescript@$OPENAPI_TYPESCRIPT_VERSION" \
      "openapi-fetch@$OPENAPI_FETCH_VERSION" \
      "typescript@$TYPESCRIPT_VERSION" >/dev/null
  fi
}

log "tools (cache: $CACHE)"
for tool in curl node npm "$PYTHON"; do
  command -v "$tool" >/dev/null 2>&1 || { echo "error: $tool is required" >&2; exit 2; }
done
lock_cache
ensure_python_tools
ensure_npm_tools
unlock_cache
echo "schemathesis $(py_version schemathesis), openapi-spec-validator $(py_version openapi-spec-validator)"
echo "openapi-typescript $(npm_version openapi-typescript), openapi-fetch $(npm_version openapi-fetch), typescript $(npm_version typescript)"

# ---------------------------------------------------------------- server
free_port() {
  "$VENV/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

start_server() {
  local attempt
  for attempt in 1 2 3; do
    PORT="$(free_port)"
    BASE="http://127.0.0.1:$PORT"
    rm -rf "$WORK/data"
    mkdir -p "$WORK/data"
    # Embedded SQLite and in-process feed (no DATABASE_URL / NATS_URL).
    # Rate limits raised so the fuzzer is never throttled; a short read wait
    # so that a random `min_position` ahead of the read model answers 503
    # PROJECTION_BEHIND after 0.2 s instead of 5 s.
    env -u DATABASE_URL -u NATS_URL -u IGNY8_JWT_KEYS -u IGNY8_SECRET_KEYS \
      RUST_LOG=warn \
      IGNY8_LOG_FORMAT=text \
      IGNY8_RATE_PER_MINUTE=1000000 \
      IGNY8_LOGIN_PER_MINUTE=1000000 \
      IGNY8_READ_WAIT_MS=200 \
      "$BIN" serve --listen "127.0.0.1:$PORT" --data-dir "$WORK/data" >>"$WORK/server.log" 2>&1 &
    SERVER_PID=$!
    local i
    for i in $(seq 1 120); do
      if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        break
      fi
      if curl -fsS "$BASE/health" >/dev/null 2>&1; then
        echo "igny8 serve (pid $SERVER_PID) ready on $BASE after $((i / 4)).$(((i % 4) * 25))s"
        return 0
      fi
      sleep 0.25
    done
    echo "server did not become healthy (attempt $attempt); log tail:" >&2
    tail -n 20 "$WORK/server.log" >&2 || true
    stop_server
  done
  return 1
}

log "server: $BIN"
if ! start_server; then
  record "server" FAIL "igny8 serve never answered /health"
  exit 1
fi

# ---------------------------------------------------------------- 1. spec
log "1. OpenAPI document"
mkdir -p "$WORK/reports"
if ! curl -fsS "$BASE/api/v1/openapi.json" -o "$WORK/openapi.json"; then
  record "download spec" FAIL "GET /api/v1/openapi.json failed"
  exit 1
fi
echo "downloaded $(wc -c <"$WORK/openapi.json") bytes from $BASE/api/v1/openapi.json"
"$VENV/bin/python" - "$WORK/openapi.json" <<'EOF'
import json, sys
spec = json.load(open(sys.argv[1]))
ops = sum(1 for item in spec["paths"].values() for m in item if m in ("get", "put", "post", "patch", "delete"))
print(f"openapi {spec.get('openapi')}, {len(spec['paths'])} paths, {ops} operations")
EOF

set +e
"$VENV/bin/openapi-spec-validator" --validation-errors all "$WORK/openapi.json" >"$WORK/validator.txt" 2>&1
rc=$?
set -e
sed "s|$WORK/||" "$WORK/validator.txt"
if [ "$rc" -eq 0 ]; then
  record "openapi-spec-validator" PASS "valid OpenAPI 3.1"
else
  n="$(grep -c 'Validation Error' "$WORK/validator.txt" || true)"
  record "openapi-spec-validator" FAIL "$n validation error(s)"
fi

# ---------------------------------------------------------------- 2. TypeScript
log "2. TypeScript client (openapi-typescript + openapi-fetch + tsc --strict)"
mkdir -p "$WORK/ts"
ln -s "$NPM_PREFIX/node_modules" "$WORK/ts/node_modules"
cp "$HERE/client.ts" "$HERE/tsconfig.json" "$WORK/ts/"
# client.ts must read the envelopes without casts: refuse `as`, `any`,
# non-null assertions and @ts- comments outside comments.
casts="$(sed -e 's|//.*$||' "$WORK/ts/client.ts" | grep -nE '\bas\b|\bany\b|@ts-|[A-Za-z0-9_)\]]![.[]' || true)"
set +e
(
  cd "$WORK/ts"
  ./node_modules/.bin/openapi-typescript ../openapi.json -o schema.d.ts
) >"$WORK/openapi-typescript.txt" 2>&1
gen_rc=$?
tsc_rc=1
if [ "$gen_rc" -eq 0 ]; then
  (cd "$WORK/ts" && ./node_modules/.bin/tsc -p tsconfig.json --strict --noEmit --pretty false) >"$WORK/tsc.txt" 2>&1
  tsc_rc=$?
fi
set -e
cat "$WORK/openapi-typescript.txt"
if [ "$gen_rc" -ne 0 ]; then
  record "openapi-typescript" FAIL "type generation failed"
else
  record "openapi-typescript" PASS "schema.d.ts generated"
  cat "$WORK/tsc.txt"
  if [ -n "$casts" ]; then
    echo "client.ts uses casts:"
    echo "$casts"
    record "tsc client.ts" FAIL "client.ts contains casts"
  elif [ "$tsc_rc" -eq 0 ]; then
    record "tsc client.ts" PASS "client.ts type-checks without casts"
  else
    n_client="$(grep -c '^client.ts(' "$WORK/tsc.txt" || true)"
    n_schema="$(grep -c '^schema.d.ts(' "$WORK/tsc.txt" || true)"
    record "tsc client.ts" FAIL "$n_client error(s) in client.ts, $n_schema in the generated schema.d.ts"
  fi
fi

# ---------------------------------------------------------------- 3. schemathesis
log "3. schemathesis"
# Two accounts with a site, a sector, keywords and clusters; seed.py writes the
# login file (wfc.json) and the dictionaries of ann's ids (dictionaries.toml).
accounts_ok=1
if ! "$VENV/bin/python" "$HERE/seed.py" "$BASE" "$WORK"; then
  accounts_ok=0
fi
# The configuration schemathesis reads: the committed schemathesis.toml plus
# the generated dictionaries (ids exist only once the server has made them).
cat "$HERE/schemathesis.toml" "$WORK/dictionaries.toml" >"$WORK/schemathesis.toml" 2>/dev/null || accounts_ok=0

if [ "$accounts_ok" -ne 1 ]; then
  record "schemathesis" FAIL "could not create the test accounts and data"
else
  export IGNY8_CONTRACT_DIR="$HERE"
  export IGNY8_CONTRACT_WFC="$WORK/wfc.json"
  export IGNY8_CONTRACT_DROPPED="$WORK/reports/dropped.jsonl"
  : >"$IGNY8_CONTRACT_DROPPED"
  mkdir -p "$WORK/st"
  ST_ARGS=(
    --config-file "$WORK/schemathesis.toml"
    run "$WORK/openapi.json"
    --url "$BASE"
    --checks all
    --phases examples,coverage,fuzzing,stateful
    --max-examples "$MAX_EXAMPLES"
    --continue-on-failure
    --max-response-time 5
    --request-timeout 30
    --workers 1
    --no-color
    --report ndjson,junit
    --report-dir "$WORK/reports"
  )
  if [ -n "${CONTRACT_SEED:-}" ]; then
    ST_ARGS+=(--seed "$CONTRACT_SEED")
  fi
  echo "+ schemathesis ${ST_ARGS[*]}" | sed "s|$WORK|\$WORK|g"
  st_start=$SECONDS
  set +e
  # The working folder keeps schemathesis' own caches (.hypothesis,
  # .schemathesis) out of the repository.
  (cd "$WORK/st" && timeout "$ST_TIMEOUT" "$VENV/bin/schemathesis" "${ST_ARGS[@]}")
  st_rc=$?
  set -e
  st_time=$((SECONDS - st_start))
  ndjson="$(ls "$WORK"/reports/*.ndjson 2>/dev/null | head -n 1 || true)"
  if [ -n "$ndjson" ]; then
    "$VENV/bin/python" "$HERE/summarize.py" "$ndjson" | tee "$WORK/reports/summary.txt" || true
  fi
  echo "failures dropped by hooks.py (reason, error_code, operation: count):"
  "$VENV/bin/python" "$HERE/dropped.py" "$IGNY8_CONTRACT_DROPPED" || true
  if [ "$st_rc" -eq 0 ]; then
    record "schemathesis" PASS "no failure (${st_time}s)"
  elif [ "$st_rc" -eq 124 ]; then
    record "schemathesis" FAIL "timed out after ${ST_TIMEOUT}s"
  else
    counts="$(sed -n 's/^failing test cases per check://p; s/^  \([a-z_]*\) (\(ST[0-9]*\)): \([0-9]*\)$/\1=\3/p' "$WORK/reports/summary.txt" 2>/dev/null | tr '\n' ' ' || true)"
    record "schemathesis" FAIL "exit $st_rc after ${st_time}s; failing cases: ${counts:-see above}"
  fi
fi

# ---------------------------------------------------------------- 4. server log
log "4. server health after the run"
server_ok=1
if ! kill -0 "$SERVER_PID" 2>/dev/null; then
  server_ok=0
  echo "the server exited during the run; log tail:"
  tail -n 40 "$WORK/server.log"
fi
panics="$(grep -c 'panicked' "$WORK/server.log" || true)"
if [ "$panics" -gt 0 ]; then
  server_ok=0
  grep -m 10 -A 3 'panicked' "$WORK/server.log"
fi
errors500="$(grep -c 'Status code: 500' "$WORK/server.log" || true)"
echo "server log: $panics panic(s), $errors500 response(s) with status 500"
if [ "$server_ok" -eq 1 ]; then
  record "server log" PASS "alive, no panic"
else
  record "server log" FAIL "$panics panic(s); alive: $(kill -0 "$SERVER_PID" 2>/dev/null && echo yes || echo no)"
fi

# ---------------------------------------------------------------- summary
status=0
printf '\n==================== CONTRACT SUMMARY (%ss) ====================\n' "$((SECONDS - RUN_START))"
for i in "${!STEP_NAMES[@]}"; do
  printf '%-5s %-24s %s\n' "${STEP_RESULTS[$i]}" "${STEP_NAMES[$i]}" "${STEP_NOTES[$i]}"
  [ "${STEP_RESULTS[$i]}" = PASS ] || status=1
done
passed=0
failed=0
for r in "${STEP_RESULTS[@]}"; do
  if [ "$r" = PASS ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
done
echo "contract: $passed passed, $failed failed"
exit "$status"

# Shared by scripts/bench and scripts/harden: process control, readiness waits, the local stack.
# Sourced, not executed. Every child is started through `start_bg`, remembered by pid, and killed by pid on exit.

ROOT=${ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
HARNESS="$ROOT/bench/harness"
WRK_DIR="$ROOT/bench/wrk"
RELEASE="${CARGO_TARGET_DIR:-$ROOT/target}/release"

API_AUDIENCE=9d2f1c3b-4a5e-4b6c-8d7e-1f2a3b4c5d6e
DAEMON_CLIENT_ID=2b4d6f8a-1c3e-4a5b-9c7d-3e5f7a9b1c2d
DAEMON_SECRET=dev-daemon-secret
SPA_CLIENT_ID=6c0e4a12-3b5d-4f7e-8a9b-0c1d2e3f4a5b
SPA_ORIGIN=http://127.0.0.1:8080
TENANT=devtenant.onmicrosoft.com
POLICY=B2C_1_signupsignin
API_ROLE=access:test-api
# Bench and soak runs must measure the pipeline, not the 429 path: limits far above any load here, in a 1 s
# window so the exact sliding window remembers at most one second of calls.
HIGH_LIMIT=1000000000/1

declare -a CHILD_PIDS=()
declare -A CHILD_NAME=()

log() { printf '%s %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# start_bg NAME CMD... — runs CMD in the background with output in $RUN/logs/NAME.log; sets LAST_PID.
start_bg() {
  local name=$1; shift
  mkdir -p "$RUN/logs"
  "$@" >"$RUN/logs/$name.log" 2>&1 &
  LAST_PID=$!
  CHILD_PIDS+=("$LAST_PID")
  CHILD_NAME[$LAST_PID]=$name
}

# stop_pid PID — TERM, then KILL after 5 s; never fails.
stop_pid() {
  local pid=$1 i
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

cleanup_children() {
  local pid
  for pid in "${CHILD_PIDS[@]:-}"; do
    [ -n "$pid" ] && stop_pid "$pid"
  done
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_http URL SECONDS [PID] — until URL answers 200; fails naming the log if PID died or time ran out.
wait_http() {
  local url=$1 seconds=$2 pid=${3:-} deadline=$((SECONDS + $2))
  while ((SECONDS < deadline)); do
    if curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null; then return 0; fi
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
      die "${CHILD_NAME[$pid]:-process} exited before $url answered; see $RUN/logs/${CHILD_NAME[$pid]:-}.log"
    fi
    sleep 0.1
  done
  die "$url did not answer 200 within ${seconds}s${pid:+ (log: $RUN/logs/${CHILD_NAME[$pid]:-}.log)}"
}

need() {
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null 2>&1 || die "missing prerequisite: $tool (run scripts/setup)"
  done
}

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

# The dev IdP's default address: a loopback address of its own (browsers keep its cookies apart from 127.0.0.1's).
IDP_HOST=127.0.0.2
idp_base() { echo "http://$IDP_HOST:$1"; }
openid_config_url() { echo "http://$IDP_HOST:$1/$TENANT/$POLICY/v2.0/.well-known/openid-configuration"; }
token_url() { echo "http://$IDP_HOST:$1/$TENANT/$POLICY/oauth2/v2.0/token"; }

# start_idp NAME PORT DATA_DIR [env...] — the dev IdP on PORT with its store in DATA_DIR; sets IDP_PID.
start_idp() {
  local name=$1 port=$2 data=$3; shift 3
  mkdir -p "$data"
  start_bg "$name" env DEVIDP_PORT="$port" DEVIDP_DATA_DIR="$data" RUST_LOG="${RUST_LOG:-warn}" "$@" "$RELEASE/dev-idp"
  IDP_PID=$LAST_PID
  wait_http "$(openid_config_url "$port")" 30 "$IDP_PID"
}

# client_credentials_token IDP_PORT — a daemon-app access token (roles: access:test-api) on stdout.
client_credentials_token() {
  local body
  body=$(curl -fsS --max-time 10 -X POST "$(token_url "$1")" \
    --data-urlencode grant_type=client_credentials \
    --data-urlencode client_id=$DAEMON_CLIENT_ID \
    --data-urlencode client_secret=$DAEMON_SECRET \
    --data-urlencode "scope=https://$TENANT/hello-api/.default") || die "client_credentials grant failed at the dev IdP"
  python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])' <<<"$body"
}

# start_function NAME PORT OPENID_URL KEY [extra env...] — the hello function; sets FN_PID.
start_function() {
  local name=$1 port=$2 openid=$3 key=$4; shift 4
  start_bg "$name" env FUNCTIONS_CUSTOMHANDLER_PORT="$port" HELLO_FUNCTION_KEYS="$key" \
    EASYAUTH_OPENID_CONFIG_URL="$openid" EASYAUTH_AUDIENCES=$API_AUDIENCE \
    EASYAUTH_UNAUTHENTICATED_ACTION=Return401 RUST_LOG="${RUST_LOG:-warn}" "$@" "$RELEASE/hello"
  FN_PID=$LAST_PID
  wait_http "http://127.0.0.1:$port/healthz" 30 "$FN_PID"
}

# start_gateway NAME PORT BACKEND_PORT OPENID_URL KEY [extra env...] — sets GW_PID.
start_gateway() {
  local name=$1 port=$2 backend=$3 openid=$4 key=$5; shift 5
  start_bg "$name" env GATEWAY_PORT="$port" GATEWAY_BACKEND_URL="http://127.0.0.1:$backend" \
    GATEWAY_BACKEND_FUNCTION_KEY="$key" GATEWAY_ALLOWED_ORIGINS=$SPA_ORIGIN \
    GATEWAY_OPENID_CONFIG_URLS="$openid" GATEWAY_AUDIENCES=$API_AUDIENCE RUST_LOG="${RUST_LOG:-warn}" \
    "$@" "$RELEASE/gateway"
  GW_PID=$LAST_PID
  wait_http "http://127.0.0.1:$port/healthz" 30 "$GW_PID"
}

# run_wrk OUT_JSON SCRIPT URL SECONDS CONNECTIONS THREADS [env...] — wrk's WRKJSON line into OUT_JSON.
run_wrk() {
  local out=$1 script=$2 url=$3 seconds=$4 conns=$5 threads=$6; shift 6
  local text
  text=$(env BENCH_WRK_DIR="$WRK_DIR" "$@" timeout $((seconds + 30)) \
    wrk -t"$threads" -c"$conns" -d"${seconds}s" --timeout 5s --latency -s "$WRK_DIR/$script" "$url") ||
    die "wrk against $url failed"
  grep '^WRKJSON ' <<<"$text" | sed 's/^WRKJSON //' >"$out"
  [ -s "$out" ] || die "wrk printed no summary for $url"
}

#!/usr/bin/env bash
# `make bench` (full, under 15 minutes) and `make bench-quick` (about a minute): builds in
# release mode, runs the webchat server pinned to core 0 and webchat-loadgen pinned to core 1,
# on a fresh SQLite file and a fresh PostgreSQL database, prints one table with every figure
# next to its target (issue 5) and writes target/bench/results.json. See docs/benchmarks.md.
#
# Environment: BENCH_PORT (default 18480), BENCH_BACKENDS ("sqlite postgres"),
# BENCH_STRICT=1 (exit non-zero when a target is missed), CARGO_TARGET_DIR.
set -euo pipefail
mode=${1:-full}
case "$mode" in full | quick) ;; *) echo "usage: $0 [full|quick]" >&2; exit 2 ;; esac
cd "$(dirname "$0")/.."

port=${BENCH_PORT:-18480}
base="http://127.0.0.1:$port"
backends=${BENCH_BACKENDS:-sqlite postgres}
target_dir=${CARGO_TARGET_DIR:-target}
out_dir=target/bench
rm -rf "$out_dir/logs"
mkdir -p "$out_dir/logs"
lines="$out_dir/lines.jsonl"
: >"$lines"
started=$(date +%s)

echo "== building (release)"
cargo build --release -p webchat-server -p webchat-loadgen
server_bin="$target_dir/release/webchat"
lg_bin="$target_dir/release/webchat-loadgen"

server_pid=""
pg_db=""
sqlite_dir=""
pg() { psql -h 127.0.0.1 -p 5432 -U postgres -d postgres -v ON_ERROR_STOP=1 -qAtc "$1"; }

stop_server() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 1 150); do
      kill -0 "$server_pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  server_pid=""
}

cleanup() {
  stop_server
  if [ -n "$pg_db" ]; then
    pg "DROP DATABASE IF EXISTS $pg_db WITH (FORCE)" || echo "warning: could not drop $pg_db" >&2
    pg_db=""
  fi
  if [ -n "$sqlite_dir" ]; then rm -rf "$sqlite_dir"; sqlite_dir=""; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_server DATABASE_URL BCRYPT_COST LOGNAME
start_server() {
  stop_server
  local extra=()
  # The auth limit (SPEC §1) would refuse the accounts the workloads make; off when the server has it.
  if "$server_bin" --help 2>/dev/null | grep -q -- '--auth-rate'; then extra+=(--auth-rate 0); fi
  RUST_LOG=warn JWT_SECRET=bench-secret-not-for-production \
    taskset -c 0 "$server_bin" --listen "127.0.0.1:$port" --database-url "$1" --bcrypt-cost "$2" \
    --send-rate 0 --log-format json "${extra[@]}" >>"$out_dir/logs/$3.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 1 300); do
    if curl -fsS -o /dev/null --max-time 1 "$base/livez" 2>/dev/null; then return 0; fi
    if ! kill -0 "$server_pid" 2>/dev/null; then break; fi
    sleep 0.1
  done
  echo "error: the server did not start; see $out_dir/logs/$3.log" >&2
  tail -5 "$out_dir/logs/$3.log" >&2 || true
  return 1
}

# run BACKEND DATABASE_URL COST WORKLOAD ARGS...: a fresh server process, one workload, one line.
run() {
  local backend=$1 url=$2 cost=$3 workload=$4
  shift 4
  echo "== $backend $workload $*"
  if ! start_server "$url" "$cost" "$backend-$workload"; then
    echo "{\"workload\":\"${workload^^}\",\"backend\":\"$backend\",\"error\":\"server did not start\"}" >>"$lines"
    return 0
  fi
  local line
  line=$(timeout 400 taskset -c 1 "$lg_bin" --server "$base" --server-pid "$server_pid" --backend "$backend" \
    "$workload" "$@" 2>>"$out_dir/logs/loadgen.log" | tail -1) || true
  if [ -z "$line" ]; then
    line="{\"workload\":\"${workload^^}\",\"backend\":\"$backend\",\"error\":\"no result (timed out or crashed; see $out_dir/logs)\"}"
  fi
  echo "$line" | tee -a "$lines"
  stop_server
}

# bcrypt alone on the server's core, with no server running: the baseline of W7.
bcrypt_rate=""
bcrypt_baseline() {
  local line
  line=$(timeout 60 taskset -c 0 "$lg_bin" bcrypt --cost 12 --secs "$1" | tail -1) || true
  echo "$line" | tee -a "$lines"
  bcrypt_rate=$(echo "$line" | sed -n 's/.*"verifies_per_s":\([0-9.]*\).*/\1/p')
}

workloads() {
  local b=$1 url=$2
  if [ "$mode" = quick ]; then
    if [ "$b" = sqlite ]; then
      run "$b" "$url" 4 w6 --secs 2 --seed-rooms 10 --seed-users 10
      run "$b" "$url" 4 w1 --secs 4 --warmup 1
      run "$b" "$url" 4 w2 --secs 4 --warmup 1
      run "$b" "$url" 4 w5 --sockets 2000 --procs 1 --settle 1
    fi
    run "$b" "$url" 4 w4 --rooms 500 --secs 4 --warmup 1
    return 0
  fi
  run "$b" "$url" 4 w6 --secs 8
  run "$b" "$url" 4 w1 --secs 20
  run "$b" "$url" 4 w2 --secs 20
  run "$b" "$url" 4 w3 --step-secs 4 --max-steps 14
  run "$b" "$url" 4 w4 --rooms 500 --secs 15
  run "$b" "$url" 4 w5 --sockets 10000 --procs 2
  run "$b" "$url" 12 w7 --secs 10 ${bcrypt_rate:+--bcrypt-baseline "$bcrypt_rate"}
}

if [ "$mode" = full ]; then
  echo "== bcrypt alone, cost 12, core 0"
  bcrypt_baseline 8
fi

for b in $backends; do
  case "$b" in
    sqlite)
      sqlite_dir=$(mktemp -d /tmp/webchat-bench.XXXXXX)
      workloads sqlite "sqlite://$sqlite_dir/bench.db"
      rm -rf "$sqlite_dir"
      sqlite_dir=""
      ;;
    postgres)
      scripts/ensure-postgres.sh
      pg_db="webchat_bench_$(od -An -N4 -tx4 /dev/urandom | tr -d ' \n')"
      pg "CREATE DATABASE $pg_db"
      workloads postgres "postgres://postgres@127.0.0.1:5432/$pg_db"
      stop_server
      pg "DROP DATABASE IF EXISTS $pg_db WITH (FORCE)"
      pg_db=""
      ;;
    *) echo "unknown backend $b" >&2; exit 2 ;;
  esac
done

echo
echo "== results ($mode, $(($(date +%s) - started)) s)"
status=0
"$lg_bin" report --input "$lines" --out "$out_dir/results.json" --mode "$mode" || status=$?
if [ "$status" -ne 0 ] && [ "${BENCH_STRICT:-0}" = 1 ]; then exit "$status"; fi
if [ "$status" -ne 0 ] && [ "$status" -ne 3 ]; then exit "$status"; fi
exit 0

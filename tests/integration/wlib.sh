# wlib.sh - helpers for the worker's integration tests: a fresh pool, the
# stand-in LLM server, workers started and stopped, results read back.
# Sourced by tests/integration/3[0-9]-*.sh; each test cleans up after
# itself through the EXIT trap set here.

set -uo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
bin=${KPOOL_BUILD:-$top/build}
export KPOOL_BROKERS=${KPOOL_BROKERS:-127.0.0.1:9092}
work=$(mktemp -d /tmp/kpool-itest.XXXXXX)
pool="it-$(basename "$0" .sh)-$RANDOM$RANDOM"
export KPOOL_POOL=$pool
pids=()
stub_port=

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

cleanup() {
    local pid rc=$?
    for pid in "${pids[@]+"${pids[@]}"}"; do
        kill -9 "$pid" 2>/dev/null
    done
    wait 2>/dev/null
    # Under the sanitizer build, any report in a log fails the test.
    if grep -l -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' \
        "$work"/*.log >/dev/null 2>&1; then
        grep -h -A 30 -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' \
            "$work"/*.log >&2
        echo "FAIL: sanitizer report (above)" >&2
        rc=1
    fi
    if [ -n "${KEEP_WORK:-}" ]; then
        echo "work dir kept: $work" >&2
    else
        rm -rf "$work"
    fi
    exit $rc
}
trap cleanup EXIT

# start_stub [FLAGS...]: the stand-in LLM server on a free port.
start_stub() {
    "$bin/kpool-stub-llm" --port 0 "$@" >"$work/stub.out" 2>"$work/stub.log" &
    pids+=($!)
    local i
    for i in $(seq 1 50); do
        stub_port=$(sed -n 's/^listening on [0-9.]*:\([0-9]*\).*/\1/p' "$work/stub.out")
        [ -n "$stub_port" ] && return 0
        sleep 0.1
    done
    fail "the stub LLM server did not start: $(cat "$work/stub.log")"
}

# start_worker NAME [FLAGS...]: a worker against the stub's Messages API;
# its log is $work/NAME.log, its pid in worker_pid[NAME].
declare -A worker_pid
start_worker() {
    local name=$1
    shift
    ANTHROPIC_API_KEY=test-key "$bin/kpool-worker" --name "$name" \
        --backend-url "http://127.0.0.1:$stub_port/v1/messages" \
        "$@" >>"$work/$name.log" 2>&1 &
    worker_pid[$name]=$!
    pids+=($!)
}

# wait_log NAME PATTERN [SECONDS]: until the worker's log shows PATTERN.
wait_log() {
    local i
    for i in $(seq 1 $((${3:-30} * 10))); do
        grep -q -- "$2" "$work/$1.log" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "--- $1.log" >&2
    tail -n 30 "$work/$1.log" >&2
    fail "worker $1 never logged '$2'"
}

stop_worker() {
    local pid=${worker_pid[$1]}
    kill -TERM "$pid" 2>/dev/null
    wait "$pid"
}

kpool() {
    "$bin/kpool" "$@"
}

# results_json: every result record of the pool, one per line.
results_json() {
    kpool results --json "$@"
}

# count_json FILTER_PY: counts results matching a Python expression over
# the record `r`, e.g. count_json 'r["status"] == "ok"'.
count_json() {
    results_json --all | python3 -c '
import json, sys
n = 0
for line in sys.stdin:
    r = json.loads(line)
    if '"$1"':
        n += 1
print(n)'
}

#!/usr/bin/env bash
# Plain-text tasks are answered; invalid UTF-8, a broken JSON object, an
# object without "input" and an oversized task each get an error result
# saying why, and the worker carries on with the next task.
. "$(dirname "$0")/wlib.sh"

start_stub
kpool topics --partitions 1 || fail "kpool topics"
start_worker w0 --max-input-bytes 100
wait_log w0 "assigned $pool.tasks"

# Raw records, as any service (here kcat) would write them.
produce() {
    printf '%s' "$2" | kcat -P -b "$KPOOL_BROKERS" -t "$pool.tasks" -p 0 \
        -k "$1" -Z 2>>"$work/kcat.log" || fail "kcat could not produce $1"
}
produce plain "what is the capital of France?"
produce badutf8 "$(printf 'caf\xc3\x28 au lait')"
produce brokenjson '{"id": "brokenjson", "input": "unterminated'
produce noinput '{"id": "noinput", "role": "poet"}'
produce toolarge "$(head -c 500 /dev/zero | tr '\0' 'x')"
produce after '{"id": "after", "input": "who wrote Hamlet?"}'

kpool wait --timeout 60 || fail "kpool wait"

check() { # id status kind
    local line
    line=$(results_json | grep "\"id\":\"$1\"") || fail "no result for $1"
    echo "$line" | python3 -c '
import json, sys
r = json.loads(sys.stdin.read())
assert r["status"] == sys.argv[1], r
if sys.argv[2] != "-":
    assert r["error"]["kind"] == sys.argv[2], r
    assert r["error"]["message"], r
else:
    assert r["output"], r
' "$2" "$3" || fail "result of $1 is not $2 $3: $line"
}
check plain ok -
check badutf8 error invalid_utf8
check brokenjson error invalid_json
check noinput error missing_input
check toolarge error input_too_large
check after ok -
results_json | grep '"id":"plain"' | grep -q 'Paris' || fail "plain-text task not answered"

kill -0 "${worker_pid[w0]}" || fail "the worker died"
stop_worker w0 || fail "worker exited non-zero"
echo "PASS"

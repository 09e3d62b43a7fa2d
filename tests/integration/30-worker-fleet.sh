#!/usr/bin/env bash
# Three workers on three partitions: nine separate submits land three per
# partition, `kpool wait` returns 0 only once all nine results are in
# <pool>.results, and each worker answered three.
. "$(dirname "$0")/wlib.sh"

start_stub
kpool topics --partitions 3 || fail "kpool topics"
for w in w0 w1 w2; do
    start_worker "$w"
done
for w in w0 w1 w2; do
    wait_log "$w" "assigned $pool.tasks"
done

questions=("capital of France?" "who wrote Hamlet?"
    "first president of the US?" "speed of light in vacuum?"
    "chemical symbol for gold?" "tallest mountain on Earth?"
    "largest ocean?" "year WWII ended?" "composer of the Ninth Symphony?")
for q in "${questions[@]}"; do
    kpool submit "$q" >>"$work/ids" || fail "submit '$q'"
done
[ "$(wc -l <"$work/ids")" = 9 ] || fail "expected 9 ids, got $(cat "$work/ids")"

kpool wait --timeout 60 || fail "kpool wait did not see lag 0"

# Lag 0 means every result is durable: all nine are readable now.
n=$(count_json 'r["status"] == "ok"')
[ "$n" = 9 ] || fail "expected 9 ok results right after wait, got $n"
while read -r id; do
    results_json | grep -q "\"id\":\"$id\"" || fail "no result for task $id"
done <"$work/ids"

for w in w0 w1 w2; do
    n=$(count_json "r[\"worker\"] == \"$w\"")
    [ "$n" = 3 ] || fail "worker $w has $n results, expected 3"
done
kpool results --by-worker | grep -q "Paris" || fail "no answer naming Paris"

# Each partition holds three tasks and is fully committed.
kpool status --json | python3 -c '
import json, sys
s = json.load(sys.stdin)
parts = s["partitions"]
assert len(parts) == 3, parts
for p in parts:
    assert p["end"] == 3 and p["committed"] == 3 and p["lag"] == 0, p
assert s["total_lag"] == 0, s
' || fail "status is not 3 tasks per partition, all committed"

for w in w0 w1 w2; do
    stop_worker "$w" || fail "worker $w exited non-zero"
done
echo "PASS"

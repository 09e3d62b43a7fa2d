#!/usr/bin/env bash
# A second worker joins while the first is busy: the first lets go of one
# partition only after its in-flight call finished and was committed, so
# every task gets exactly one result, and each worker ends with one
# partition.
. "$(dirname "$0")/wlib.sh"

start_stub
kpool topics --partitions 2 || fail "kpool topics"
start_worker w0
wait_log w0 "assigned $pool.tasks \[1\]"

for i in $(seq 1 12); do
    kpool submit "task $i [stub:sleep=400]" >>"$work/ids" || fail "submit"
done
wait_log w0 "task ok" 20

start_worker w1
wait_log w1 "assigned $pool.tasks" 30
wait_log w0 "released $pool.tasks" 30
kpool wait --timeout 90 || fail "kpool wait"

grep -q "unfinished" "$work/w0.log" &&
    fail "w0 let go with tasks unfinished: $(grep unfinished "$work/w0.log")"
n=$(count_json 'True')
[ "$n" = 12 ] || fail "expected exactly 12 result records (no task run twice), got $n"
while read -r id; do
    results_json | grep -q "\"id\":\"$id\".*\"status\":\"ok\"" ||
        fail "task $id has no ok result"
done <"$work/ids"
for w in w0 w1; do
    n=$(count_json "r[\"worker\"] == \"$w\"")
    [ "$n" -gt 0 ] || fail "worker $w answered nothing"
done
kpool status --json | python3 -c '
import json, sys
s = json.load(sys.stdin)
owners = sorted(p["owner"].split("@")[0] for p in s["partitions"])
assert owners == ["w0", "w1"], owners
' || fail "the partitions are not one per worker: $(kpool status)"
stop_worker w1 || fail "w1 exited non-zero"
stop_worker w0 || fail "w0 exited non-zero"
echo "PASS"

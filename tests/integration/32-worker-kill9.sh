#!/usr/bin/env bash
# kill -9 of a worker in mid-task, then a restart under the same name:
# every task ends with a result.
. "$(dirname "$0")/wlib.sh"

start_stub
kpool topics --partitions 1 || fail "kpool topics"
start_worker w0
wait_log w0 "assigned $pool.tasks"

for i in 1 2 3 4 5; do
    kpool submit "slow task $i [stub:sleep=700]" >>"$work/ids" || fail "submit"
done

# Kill it while the second or third task is with the backend.
wait_log w0 "task ok" 20
sleep 0.3
kill -9 "${worker_pid[w0]}"
wait "${worker_pid[w0]}" 2>/dev/null

start_worker w0
kpool wait --timeout 90 || fail "kpool wait after the restart"

while read -r id; do
    results_json | grep -q "\"id\":\"$id\".*\"status\":\"ok\"" ||
        fail "task $id has no ok result"
done <"$work/ids"
stop_worker w0 || fail "worker exited non-zero"
echo "PASS"

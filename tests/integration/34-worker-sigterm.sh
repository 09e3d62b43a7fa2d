#!/usr/bin/env bash
# SIGTERM with a call in flight: the worker stops fetching, lets the call
# finish, publishes and commits its result, and exits 0; lag is 0. A
# second signal during a long drain exits at once, non-zero, and the
# unfinished task stays uncommitted.
. "$(dirname "$0")/wlib.sh"

start_stub
kpool topics --partitions 1 || fail "kpool topics"
start_worker w0
wait_log w0 "assigned $pool.tasks"

kpool submit "slow [stub:sleep=2000]" >"$work/ids" || fail "submit"
# Let the call reach the stub before the signal.
sleep 1
kill -TERM "${worker_pid[w0]}"
wait "${worker_pid[w0]}"
rc=$?
[ $rc = 0 ] || fail "worker exited $rc after SIGTERM, expected 0"
grep -q "stopping" "$work/w0.log" || fail "no stopping line in the log"

id=$(cat "$work/ids")
results_json | grep -q "\"id\":\"$id\".*\"status\":\"ok\"" ||
    fail "the in-flight task has no result after the drain"
kpool wait --timeout 5 || fail "lag is not 0 after a clean stop"

# The same name again: a static member takes its partition straight back.
mv "$work/w0.log" "$work/w0-first.txt"
start_worker w0
wait_log w0 "assigned $pool.tasks"
kpool submit "very slow [stub:sleep=60000]" >/dev/null || fail "submit"
sleep 1
kill -TERM "${worker_pid[w0]}"
wait_log w0 "stopping"
start=$SECONDS
kill -INT "${worker_pid[w0]}"
wait "${worker_pid[w0]}"
rc=$?
[ $rc != 0 ] || fail "worker exited 0 after a second signal, expected non-zero"
[ $((SECONDS - start)) -le 5 ] ||
    fail "worker took $((SECONDS - start)) s to exit after the second signal"
grep -q "second signal" "$work/w0.log" || fail "no second-signal line in the log"
kpool wait --timeout 1 >/dev/null 2>&1 &&
    fail "lag is 0 although the slow task never finished"
echo "PASS"

#!/usr/bin/env bash
# A backend call longer than max.poll.interval.ms does not cost the worker
# its partition: the event loop keeps polling while the call runs.
. "$(dirname "$0")/wlib.sh"

start_stub
kpool topics --partitions 1 || fail "kpool topics"
start_worker w0 -X max.poll.interval.ms=6000 -X session.timeout.ms=6000 \
    --timeout-ms 60000
wait_log w0 "assigned $pool.tasks"

kpool submit "take your time [stub:sleep=15000]" >"$work/ids" || fail "submit"
kpool submit "and then this" >>"$work/ids" || fail "submit"
kpool wait --timeout 60 || fail "kpool wait"

grep -Eq "released|lost|poll interval|revoked" "$work/w0.log" &&
    fail "the worker lost its partition during the call: $(grep -E 'released|lost|poll interval' "$work/w0.log")"
n=$(grep -c "assigned $pool.tasks" "$work/w0.log")
[ "$n" = 1 ] || fail "the worker was assigned $n times, expected once"
n=$(count_json 'r["status"] == "ok" and r["worker"] == "w0"')
[ "$n" = 2 ] || fail "expected 2 ok results from w0, got $n"
stop_worker w0 || fail "worker exited non-zero"
echo "PASS"

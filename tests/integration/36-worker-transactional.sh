#!/usr/bin/env bash
# Tasks written by a transactional producer: the commit marker after them
# takes an offset of its own. The worker commits its consumer position,
# not last offset + 1, so the pool's lag still reaches 0.
. "$(dirname "$0")/wlib.sh"

start_stub
kpool topics --partitions 1 || fail "kpool topics"
start_worker w0
wait_log w0 "assigned $pool.tasks"

"$bin/kpool-txn-produce" "$KPOOL_BROKERS" "$pool.tasks" 0 \
    "capital of France?" "who wrote Hamlet?" "largest ocean?" ||
    fail "transactional produce"

kpool wait --timeout 30 || fail "lag did not reach 0 behind a transaction"
kpool status --json | python3 -c '
import json, sys
p = json.load(sys.stdin)["partitions"][0]
# Three tasks and a commit marker: the end offset is 4, and so is the
# committed one.
assert p["end"] == 4 and p["committed"] == 4 and p["lag"] == 0, p
' || fail "committed offset is not past the commit marker"
n=$(count_json 'r["status"] == "ok"')
[ "$n" = 3 ] || fail "expected 3 ok results, got $n"
stop_worker w0 || fail "worker exited non-zero"
echo "PASS"

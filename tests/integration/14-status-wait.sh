#!/usr/bin/env bash
# kpool status and wait with no workers: every task counts as lag, wait
# times out naming what remains, and returns 0 once the group's committed
# offsets reach the end (or when nothing was ever submitted).
. "$(dirname "$0")/lib.sh"

pool=$(new_pool)
tmp=$(mktemp -d)
waiter=
cleanup() {
        [ -z "$waiter" ] || kill "$waiter" 2>/dev/null || true
        rm -rf "$tmp"
}
trap cleanup EXIT

run "$KPOOL" wait --pool "$pool" --timeout 1
[ "$rc" -eq 1 ] || fail "wait without topics: expected exit 1, got $rc"
grep -q "does not exist" <<<"$err" || fail "wait without topics: expected 'does not exist', got: $err"

"$KPOOL" topics --pool "$pool" --partitions 3 >/dev/null

# Nothing submitted: quiescent at once.
run "$KPOOL" wait --pool "$pool" --timeout 5
[ "$rc" -eq 0 ] || fail "wait on an empty pool: expected exit 0, got $rc: $err"
run "$KPOOL" status --pool "$pool" --json
[ "$rc" -eq 0 ] || fail "status --json: expected exit 0, got $rc: $err"
jq -e --arg pool "$pool" '.pool == $pool and .group == ($pool + ".workers")
        and .total_lag == 0 and .total_end == 0 and .members == 0
        and (.partitions | length) == 3
        and all(.partitions[]; .owner == null and .committed == null)' \
        <<<"$out" >/dev/null || fail "status --json on an empty pool: got $out"

"$KPOOL" submit --pool "$pool" one two three four five six >/dev/null

# Never committed: the whole backlog is lag.
run "$KPOOL" status --pool "$pool" --json
jq -e '.total_lag == 6 and .total_end == 6 and
        ([.partitions[].lag] == [2, 2, 2])' <<<"$out" >/dev/null ||
        fail "status --json after 6 tasks: expected lag 2 per partition, got $out"

run "$KPOOL" status --pool "$pool"
[ "$rc" -eq 0 ] || fail "status: expected exit 0, got $rc: $err"
grep -q "^PARTITION *OWNER *COMMITTED *END *LAG" <<<"$out" ||
        fail "status table: expected a header line, got: $out"
grep -Eq "^ *1 +- +- +2 +2$" <<<"$out" ||
        fail "status table: expected partition 1 with no owner, end 2, lag 2, got: $out"
grep -q "members 0" <<<"$out" || fail "status table: expected 'members 0', got: $out"

# No workers: wait gives up and names what remains, per partition.
start=$SECONDS
run "$KPOOL" wait --pool "$pool" --timeout 1 --interval-ms 100
[ "$rc" -eq 1 ] || fail "wait --timeout 1: expected exit 1, got $rc"
[ $((SECONDS - start)) -le 5 ] || fail "wait --timeout 1 took $((SECONDS - start)) s"
[ -z "$out" ] || fail "wait --timeout 1: expected nothing on stdout, got: $out"
grep -q "timed out" <<<"$err" || fail "wait --timeout 1: expected 'timed out', got: $err"
for p in 0 1 2; do
        grep -q "partition $p: lag 2" <<<"$err" ||
                fail "wait --timeout 1: expected 'partition $p: lag 2' in: $err"
done

# Wait, then let the group catch up: it returns 0 once lag is 0.
"$KPOOL" wait --pool "$pool" --timeout 60 --interval-ms 100 \
        >"$tmp/wait.out" 2>"$tmp/wait.err" &
waiter=$!
for p in 0 1 2; do
        commit_offset "$pool.workers" "$pool.tasks" "$p" 2
done
set +e
wait "$waiter"
rc=$?
set -e
waiter=
[ "$rc" -eq 0 ] || fail "wait while the group catches up: expected exit 0, got $rc: $(cat "$tmp/wait.err")"
grep -q "lag 0" "$tmp/wait.out" ||
        fail "wait: expected a final 'lag 0' line, got: $(cat "$tmp/wait.out")"

run "$KPOOL" status --pool "$pool" --json
jq -e '.total_lag == 0 and all(.partitions[]; .committed == 2)' <<<"$out" \
        >/dev/null || fail "status after commits: expected committed 2, lag 0: $out"

echo "$TEST: ok"

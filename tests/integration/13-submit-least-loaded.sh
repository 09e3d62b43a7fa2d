#!/usr/bin/env bash
# kpool submit --dispatch least-loaded sends to the partition with the
# least lag (end offset minus the group's committed offset; the whole
# backlog when never committed), where round-robin would pick the one
# with the fewest records.
. "$(dirname "$0")/lib.sh"

pool=$(new_pool)

ends() {
        "$KPOOL" status --pool "$pool" --json |
                jq -r '[.partitions[].end] | map(tostring) | join(" ")'
}
lags() {
        "$KPOOL" status --pool "$pool" --json |
                jq -r '[.partitions[].lag] | map(tostring) | join(" ")'
}

"$KPOOL" topics --pool "$pool" --partitions 3 >/dev/null

# Records 4 / 1 / 2, then the group has done all of partition 0.
"$KPOOL" submit --pool "$pool" --partition 0 a b c d >/dev/null
"$KPOOL" submit --pool "$pool" --partition 1 e >/dev/null
"$KPOOL" submit --pool "$pool" --partition 2 f g >/dev/null
commit_offset "$pool.workers" "$pool.tasks" 0 4
[ "$(lags)" = "0 1 2" ] || fail "setup: expected lags 0 1 2, got $(lags)"

run "$KPOOL" submit --pool "$pool" --dispatch least-loaded h
[ "$rc" -eq 0 ] || fail "least-loaded: expected exit 0, got $rc: $err"
[ "$(ends)" = "5 1 2" ] ||
        fail "least-loaded: expected the task on partition 0 (lag 0): ends 5 1 2, got $(ends)"

# Lags now 1 1 2: a tie goes to the lowest partition, then they even out.
run "$KPOOL" submit --pool "$pool" -d least-loaded i j k l
[ "$rc" -eq 0 ] || fail "least-loaded x4: expected exit 0, got $rc: $err"
[ "$(lags)" = "3 3 2" ] || fail "least-loaded x4: expected lags 3 3 2, got $(lags)"

# Round-robin ignores lag: fewest records (2) is partition 2.
run "$KPOOL" submit --pool "$pool" m
[ "$(ends)" = "7 3 3" ] || fail "round-robin: expected ends 7 3 3, got $(ends)"

echo "$TEST: ok"

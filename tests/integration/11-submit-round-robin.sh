#!/usr/bin/env bash
# kpool submit's round-robin stays even across separate invocations: nine
# one-task submits over three partitions put three on each. --partition
# sends to one partition and is checked against the partition count.
. "$(dirname "$0")/lib.sh"

pool=$(new_pool)
work_err=$(mktemp)
trap 'rm -f "$work_err"' EXIT

# ends: the end offset of each partition, space-separated.
ends() {
        "$KPOOL" status --pool "$pool" --json |
                jq -r '[.partitions[].end] | map(tostring) | join(" ")'
}

run "$KPOOL" submit --pool "$pool" "before the topics"
[ "$rc" -eq 1 ] || fail "submit without topics: expected exit 1, got $rc"
grep -q "kpool topics" <<<"$err" ||
        fail "submit without topics: expected a hint to run 'kpool topics', got: $err"

"$KPOOL" topics --pool "$pool" --partitions 3 >/dev/null

for i in 1 2 3 4 5 6 7 8 9; do
        run "$KPOOL" submit --pool "$pool" "task $i"
        [ "$rc" -eq 0 ] || fail "submit $i: expected exit 0, got $rc: $err"
        [[ "$out" =~ ^[0-9a-f]{32}$ ]] ||
                fail "submit $i: expected one 32-hex id on stdout, got: $out"
done
seen=$(ends 2>"$work_err")
[ "$seen" = "3 3 3" ] ||
        fail "9 separate submits: expected 3 3 3 per partition, got '$seen' ($(cat "$work_err")); read again: $(ends)"

# Six in one go top up evenly as well.
run "$KPOOL" submit --pool "$pool" a b c d e f
[ "$rc" -eq 0 ] || fail "submit of 6: expected exit 0, got $rc: $err"
[ "$(wc -l <<<"$out")" -eq 6 ] || fail "submit of 6: expected 6 ids, got: $out"
[ "$(ends)" = "5 5 5" ] || fail "after 6 more: expected 5 5 5, got $(ends)"

# An uneven start is evened out: 2 to partition 2, then 4 spread.
run "$KPOOL" submit --pool "$pool" --partition 2 x y
[ "$rc" -eq 0 ] || fail "submit --partition 2: expected exit 0, got $rc: $err"
[ "$(ends)" = "5 5 7" ] || fail "after --partition 2: expected 5 5 7, got $(ends)"
run "$KPOOL" submit --pool "$pool" p q r s
[ "$(ends)" = "7 7 7" ] || fail "after 4 round-robin: expected 7 7 7, got $(ends)"

run "$KPOOL" submit --pool "$pool" --partition 3 z
[ "$rc" -eq 2 ] || fail "submit --partition 3 of 3: expected exit 2, got $rc"
grep -q "partition" <<<"$err" || fail "--partition 3: expected a reason, got: $err"
[ "$(ends)" = "7 7 7" ] || fail "a refused submit sent something: $(ends)"

echo "$TEST: ok"

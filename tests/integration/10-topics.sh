#!/usr/bin/env bash
# kpool topics creates both topics, re-checks them, and refuses a
# partition count that differs from what exists.
. "$(dirname "$0")/lib.sh"

pool=$(new_pool)

run "$KPOOL" topics --pool "$pool" --partitions 4
[ "$rc" -eq 0 ] || fail "first topics: expected exit 0, got $rc: $err"
[ "$out" = "$pool.tasks: created (4 partitions)
$pool.results: created (4 partitions)" ] ||
        fail "first topics: expected two 'created (4 partitions)' lines, got: $out"

# Again, without --partitions: both exist, their count is reported.
run "$KPOOL" topics --pool "$pool"
[ "$rc" -eq 0 ] || fail "second topics: expected exit 0, got $rc: $err"
[ "$out" = "$pool.tasks: exists (4 partitions)
$pool.results: exists (4 partitions)" ] ||
        fail "second topics: expected two 'exists (4 partitions)' lines, got: $out"

# The same count given explicitly is fine.
run "$KPOOL" topics --pool "$pool" --partitions 4
[ "$rc" -eq 0 ] || fail "topics --partitions 4 again: expected exit 0, got $rc: $err"

# The short flag too.
run "$KPOOL" topics --pool "$pool" -P 4
[ "$rc" -eq 0 ] || fail "topics -P 4: expected exit 0, got $rc: $err"

# A different explicit count is an error naming both counts.
run "$KPOOL" topics --pool "$pool" --partitions 6
[ "$rc" -eq 1 ] || fail "topics --partitions 6 on 4: expected exit 1, got $rc"
grep -q "exists with 4 partitions" <<<"$err" ||
        fail "mismatch error should say what exists, got: $err"
grep -q "asked for 6" <<<"$err" ||
        fail "mismatch error should say what was asked, got: $err"

# Bad usage: arguments, a bad pool name, a bad count.
run "$KPOOL" topics --pool "$pool" extra
[ "$rc" -eq 2 ] || fail "topics with an argument: expected exit 2, got $rc"
run "$KPOOL" topics --pool "bad/name"
[ "$rc" -eq 2 ] || fail "topics --pool bad/name: expected exit 2, got $rc"
run "$KPOOL" topics --pool "$pool" --partitions 0
[ "$rc" -eq 2 ] || fail "topics --partitions 0: expected exit 2, got $rc"

# Unreachable brokers: a clear error, within the admin timeout.
start=$SECONDS
run "$KPOOL" topics --pool "$pool" -b 127.0.0.1:1
[ "$rc" -eq 1 ] || fail "unreachable brokers: expected exit 1, got $rc"
grep -q "cannot reach the brokers at 127.0.0.1:1" <<<"$err" ||
        fail "unreachable brokers: expected 'cannot reach the brokers', got: $err"
[ $((SECONDS - start)) -le 20 ] ||
        fail "unreachable brokers: took $((SECONDS - start)) s, expected about 10"

echo "$TEST: ok"

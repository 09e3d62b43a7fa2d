#!/usr/bin/env bash
# kpool submit exits 1 and names each task the broker refused, while the
# tasks it acknowledged are still printed and stored.
. "$(dirname "$0")/lib.sh"

pool=$(new_pool)
"$KPOOL" topics --pool "$pool" --partitions 1 >/dev/null

# The broker refuses record batches over 400 bytes on this pool's tasks
# topic; each task goes in a batch of its own.
libs=$("$ROOT/scripts/setup" env 2>/dev/null | sed -n 's/^KPOOL_KAFKA_LIBS=//p')
java -Xmx128m -cp "$libs/*" kafka.admin.ConfigCommand \
        --bootstrap-server "$KPOOL_BROKERS" --alter --entity-type topics \
        --entity-name "$pool.tasks" --add-config max.message.bytes=400 \
        >/dev/null 2>&1 || fail "could not set max.message.bytes"

big=$(head -c 800 /dev/zero | tr '\0' 'x')
tasks=$(mktemp)
trap 'rm -f "$tasks"' EXIT
printf 'small one\n%s\nsmall two\n' "$big" >"$tasks"
run "$KPOOL" submit --pool "$pool" -f "$tasks" -X batch.num.messages=1

[ "$rc" -eq 1 ] || fail "expected exit 1 when a task is refused, got $rc: $err"
[ "$(wc -l <<<"$out")" -eq 2 ] ||
        fail "expected the 2 acknowledged ids on stdout, got: $out"
grep -q "line 2" <<<"$err" ||
        fail "expected the refused task named by its line, got: $err"
grep -q "Message size too large" <<<"$err" ||
        fail "expected the broker's reason, got: $err"
grep -q "1 of 3 tasks were not acknowledged" <<<"$err" ||
        fail "expected a count of refused tasks, got: $err"

end=$("$KPOOL" status --pool "$pool" --json | jq '.partitions[0].end')
[ "$end" = 2 ] || fail "expected 2 tasks stored, got $end"
echo "$TEST: ok"

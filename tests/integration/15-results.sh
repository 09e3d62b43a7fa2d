#!/usr/bin/env bash
# kpool results reads <pool>.results to its end and exits: the last result
# of each task (or all with --all), grouped by worker, or as stored JSON.
# The result records are written with kcat, as a worker would write them.
. "$(dirname "$0")/lib.sh"

command -v kcat >/dev/null || fail "kcat is needed (scripts/setup installs it)"

pool=$(new_pool)

run "$KPOOL" results --pool "$pool"
[ "$rc" -eq 1 ] || fail "results without topics: expected exit 1, got $rc"

"$KPOOL" topics --pool "$pool" --partitions 2 >/dev/null

run "$KPOOL" results --pool "$pool"
[ "$rc" -eq 0 ] && [ -z "$out" ] ||
        fail "results of an empty topic: expected exit 0 and no output, got $rc: $out $err"

t1a='{"id":"t1","status":"ok","output":"Paris.","worker":"w2","partition":0,"offset":0,"attempts":1,"duration_ms":5,"completed_at":"2026-01-01T00:00:01.000000Z"}'
t2a='{"id":"t2","status":"error","error":{"kind":"timeout","message":"deadline passed"},"worker":"w1","partition":1,"offset":0,"attempts":3,"duration_ms":9,"completed_at":"2026-01-01T00:00:02.000000Z"}'
t1b='{"id":"t1","status":"ok","output":"Paris, France.\nCapital.","worker":"w1","partition":0,"offset":0,"attempts":1,"duration_ms":5,"completed_at":"2026-01-01T00:00:03.000000Z"}'
t3='{"id":"t3","status":"ok","output":"4","worker":"w2","partition":2,"offset":7,"attempts":1,"duration_ms":5,"completed_at":"2026-01-01T00:00:01.000000Z"}'
t2b='{"id":"t2","status":"ok","output":"late twin","worker":"w3","partition":1,"offset":0,"attempts":1,"duration_ms":5,"completed_at":"2026-01-01T00:00:00.000000Z"}'

# Partition 0: t1, t2, a record that is not JSON, t1 again (later).
# Partition 1: t3, and a twin of t2 that completed earlier than p0's.
printf '%s\t%s\n' t1 "$t1a" t2 "$t2a" junk "not json at all" t1 "$t1b" |
        kcat -P -b "$KPOOL_BROKERS" -t "$pool.results" -p 0 -K $'\t'
printf '%s\t%s\n' t3 "$t3" t2 "$t2b" |
        kcat -P -b "$KPOOL_BROKERS" -t "$pool.results" -p 1 -K $'\t'

run "$KPOOL" results --pool "$pool"
[ "$rc" -eq 0 ] || fail "results: expected exit 0, got $rc: $err"
expected='t2  w1  p1@0  error  timeout: deadline passed
t1  w1  p0@0  ok  Paris, France.\nCapital.
t3  w2  p2@7  ok  4'
[ "$out" = "$expected" ] ||
        fail "results: expected the last result per task:
$expected
got:
$out"
grep -q "not a JSON result" <<<"$err" ||
        fail "results: expected the non-JSON record reported on stderr, got: $err"

run "$KPOOL" results --pool "$pool" --by-worker
expected='worker w1 (2 results)
  t2  error  timeout: deadline passed
  t1  ok  Paris, France.\nCapital.
worker w2 (1 result)
  t3  ok  4'
[ "$out" = "$expected" ] ||
        fail "results --by-worker: expected:
$expected
got:
$out"

run "$KPOOL" results --pool "$pool" --all
[ "$(wc -l <<<"$out")" -eq 5 ] ||
        fail "results --all: expected 5 results (duplicates kept), got: $out"

run "$KPOOL" results --pool "$pool" --json
[ "$out" = "$t2a
$t1b
$t3" ] || fail "results --json: expected the stored records, got: $out"

run "$KPOOL" results --pool "$pool" --json --all --by-worker
[ "$(jq -r .worker <<<"$out" | tr '\n' ' ')" = "w1 w1 w2 w2 w3 " ] ||
        fail "results --json --all --by-worker: expected workers w1 w1 w2 w2 w3, got: $out"

echo "$TEST: ok"

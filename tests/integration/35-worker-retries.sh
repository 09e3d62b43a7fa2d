#!/usr/bin/env bash
# Backend failures: 500s are retried until one succeeds, a 400 is an
# error result at once, retries run out into an error result, and a
# concurrency of 4 keeps several calls in flight.
. "$(dirname "$0")/wlib.sh"

start_stub
kpool topics --partitions 1 || fail "kpool topics"
start_worker w0 --concurrency 4 --attempts 3 --retry-backoff-ms 50
wait_log w0 "assigned $pool.tasks"

kpool submit '{"id":"flaky","input":"try again [stub:fail=2]"}' || fail submit
kpool submit '{"id":"refused","input":"no [stub:status=400]"}' || fail submit
kpool submit '{"id":"down","input":"never [stub:status=503]"}' || fail submit
for i in 1 2 3 4 5 6 7 8; do
    kpool submit "{\"id\":\"par$i\",\"input\":\"parallel $i [stub:sleep=500]\"}" ||
        fail submit
done
kpool wait --timeout 60 || fail "kpool wait"

field() { # id python-expression
    results_json | grep "\"id\":\"$1\"" | python3 -c '
import json, sys
r = json.loads(sys.stdin.read())
print(eval(sys.argv[1]))' "$2"
}
[ "$(field flaky 'r["status"], r["attempts"]')" = "('ok', 3)" ] ||
    fail "flaky: $(results_json | grep '"id":"flaky"')"
[ "$(field refused 'r["status"], r["error"]["kind"], r["attempts"]')" = "('error', 'backend_error', 1)" ] ||
    fail "refused: $(results_json | grep '"id":"refused"')"
[ "$(field down 'r["status"], r["error"]["kind"], r["error"]["http_status"], r["attempts"]')" = "('error', 'retries_exhausted', 503, 3)" ] ||
    fail "down: $(results_json | grep '"id":"down"')"

# With 4 calls in flight, the 8 half-second tasks overlapped: some task
# started before another one's call had finished.
results_json | python3 -c '
import json, sys
from datetime import datetime, timedelta
spans = []
for line in sys.stdin:
    r = json.loads(line)
    if r["id"].startswith("par"):
        end = datetime.fromisoformat(r["completed_at"].replace("Z", "+00:00"))
        spans.append((end - timedelta(milliseconds=r["duration_ms"]), end))
assert len(spans) == 8, spans
spans.sort()
overlaps = sum(1 for a, b in zip(spans, spans[1:]) if b[0] < a[1])
assert overlaps >= 4, spans
' || fail "the calls did not run concurrently"
stop_worker w0 || fail "worker exited non-zero"
echo "PASS"

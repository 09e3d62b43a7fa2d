#!/usr/bin/env bash
# The worker's long-running paths under valgrind: hundreds of tasks, bad
# input, retries and a clean stop, with no memory errors and no leaks.
. "$(dirname "$0")/wlib.sh"

# valgrind runs the plain build; the sanitizer build cannot run under it.
plain=${KPOOL_PLAIN_BUILD:-$top/build}
[ -x "$plain/kpool-worker" ] || fail "$plain/kpool-worker is not built"
command -v valgrind >/dev/null || fail "valgrind is not installed"

start_stub
kpool topics --partitions 2 || fail "kpool topics"
ANTHROPIC_API_KEY=test-key valgrind --quiet --leak-check=full \
    --errors-for-leak-kinds=definite,indirect --error-exitcode=99 \
    "$plain/kpool-worker" --name vg --concurrency 4 --attempts 3 \
    --retry-backoff-ms 10 --max-input-bytes 1000 --log-level warn \
    --backend-url "http://127.0.0.1:$stub_port/v1/messages" \
    >"$work/vg.log" 2>&1 &
vg_pid=$!
pids+=("$vg_pid")
for _ in $(seq 1 300); do
    kpool status --json 2>/dev/null | grep -q '"members":1' && break
    sleep 0.2
done

seq 1 300 | sed 's/^/task number /' | kpool submit - >/dev/null || fail "submit"
kpool submit '{"id":"flaky","input":"x [stub:fail=2]"}' >/dev/null || fail submit
kpool submit '{"id":"bad","input":"x [stub:status=400]"}' >/dev/null || fail submit
kpool submit '{"id":"nope"}' >/dev/null 2>&1 # refused by kpool itself
printf '{"id": "broken", "input": ' | kcat -P -b "$KPOOL_BROKERS" \
    -t "$pool.tasks" -p 0 -k broken 2>/dev/null || fail "kcat"
head -c 2000 /dev/zero | tr '\0' 'y' | kpool submit - >/dev/null || fail submit
kpool wait --timeout 120 || fail "kpool wait under valgrind"

kill -TERM "$vg_pid"
wait "$vg_pid"
rc=$?
[ $rc = 0 ] || { cat "$work/vg.log" >&2; fail "worker under valgrind exited $rc"; }
n=$(count_json 'True')
[ "$n" -ge 304 ] || fail "expected at least 304 results, got $n"
echo "PASS"

#!/usr/bin/env bash
# A real kpool-worker against librdkafka's mock cluster, through injected
# Kafka faults: Produce errors, a lost group coordinator, brokers down,
# undeliverable and refused results. kpool-mock-faults runs the cluster
# in its own process, so no broker is needed; it prints one "ok N" or
# "not ok N" line per scenario (the worker's log tail after a failure).
set -uo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
build=${KPOOL_BUILD:-$root/build}

fail() {
        echo "$(basename "$0" .sh): FAIL: $*" >&2
        exit 1
}

for b in kpool-mock-faults kpool-worker kpool-stub-llm; do
        [ -x "$build/$b" ] || fail "$build/$b is not built (make bins)"
done
"$build/kpool-mock-faults" || fail "kpool-mock-faults: a scenario failed"
echo "PASS"

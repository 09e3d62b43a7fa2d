# tests/integration/lib.sh - sourced by each integration test: paths,
# a pool name of the test's own, fail() and run().
#
# Tests talk to $KPOOL_BROKERS (default 127.0.0.1:9092) and use the
# binaries in $KPOOL_BUILD (default build/).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${KPOOL_BUILD:-$ROOT/build}
KPOOL=$BUILD/kpool
KPOOL_WORKER=$BUILD/kpool-worker
TEST=$(basename "$0" .sh)

# kpool reads --brokers from KPOOL_BROKERS; nothing else comes from the
# caller's environment.
export KPOOL_BROKERS=${KPOOL_BROKERS:-127.0.0.1:9092}
unset KPOOL_CONFIG KPOOL_POOL

fail() {
        echo "$TEST: FAIL: $*" >&2
        exit 1
}

# A pool nobody else uses: it-<test>-<pid>-<random>.
new_pool() {
        echo "it-$TEST-$$-$RANDOM"
}

# run CMD...: runs it without stopping the test; sets $rc, $out, $err.
run() {
        local o e
        o=$(mktemp)
        e=$(mktemp)
        set +e
        "$@" >"$o" 2>"$e"
        rc=$?
        set -e
        out=$(cat "$o")
        err=$(cat "$e")
        rm -f "$o" "$e"
}

# commit_offset GROUP TOPIC PARTITION OFFSET: commits an offset for a
# group with no members, with Kafka's own tool (needs java and the Kafka
# jars that scripts/setup installs).
commit_offset() {
        local libs
        libs=${KPOOL_KAFKA_LIBS:-$("$ROOT/scripts/setup" env 2>/dev/null |
                sed -n 's/^KPOOL_KAFKA_LIBS=//p')}
        [ -n "$libs" ] && [ -d "$libs" ] ||
                fail "Kafka's jars not found (run scripts/setup kafka)"
        java -Xmx128m -cp "$libs/*" \
                org.apache.kafka.tools.consumer.group.ConsumerGroupCommand \
                --bootstrap-server "$KPOOL_BROKERS" --group "$1" \
                --topic "$2:$3" --reset-offsets --to-offset "$4" --execute \
                >/dev/null 2>&1 ||
                fail "could not commit offset $4 for $1 on $2 [$3]"
}

[ -x "$KPOOL" ] || fail "$KPOOL is not built (run make)"

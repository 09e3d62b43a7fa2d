#!/usr/bin/env bash
# kpool status names each partition's owner: the group member holding it
# (its name and host), else the worker that committed last, "(last
# commit)", else nobody. Uses kpool-worker against the stand-in LLM.
. "$(dirname "$0")/lib.sh"

for b in "$KPOOL_WORKER" "$BUILD/kpool-stub-llm"; do
        [ -x "$b" ] || fail "$b is not built (run make)"
done

tmp=$(mktemp -d)
pids=()
cleanup() {
        local pid
        for pid in "${pids[@]+"${pids[@]}"}"; do
                { kill -9 "$pid" && wait "$pid"; } 2>/dev/null || true
        done
        rm -rf "$tmp"
}
trap cleanup EXIT

"$BUILD/kpool-stub-llm" --port 0 >"$tmp/stub.out" 2>"$tmp/stub.log" &
pids+=($!)
port=
for _ in $(seq 1 50); do
        port=$(sed -n 's/^listening on [0-9.]*:\([0-9]*\).*/\1/p' "$tmp/stub.out")
        [ -n "$port" ] && break
        sleep 0.1
done
[ -n "$port" ] || fail "the stub LLM server did not start: $(cat "$tmp/stub.log")"

# worker POOL NAME [FLAGS...]: a worker in the background.
worker() {
        local pool=$1 name=$2
        shift 2
        ANTHROPIC_API_KEY=test-key "$KPOOL_WORKER" --pool "$pool" \
                --name "$name" \
                --backend-url "http://127.0.0.1:$port/v1/messages" "$@" \
                >>"$tmp/$name.log" 2>&1 &
        pids+=($!)
}

# A member of the group owns every partition while it runs.
pool=$(new_pool)
"$KPOOL" topics --pool "$pool" --partitions 2 >/dev/null
worker "$pool" owner-a
"$KPOOL" submit --pool "$pool" one two three >/dev/null
run "$KPOOL" wait --pool "$pool" --timeout 60
[ "$rc" -eq 0 ] || fail "wait with a worker: expected exit 0, got $rc: $err"
run "$KPOOL" status --pool "$pool" --json
jq -e '.state == "Stable" and .members == 1 and .total_lag == 0 and
        all(.partitions[]; (.owner | startswith("owner-a@")) and
                .member.name == "owner-a")' <<<"$out" >/dev/null ||
        fail "status with one member: expected owner-a@HOST on both partitions, got: $out"
run "$KPOOL" status --pool "$pool"
grep -Eq "^ +0 +owner-a@[^ ]+ +[0-9]+ +[0-9]+ +0$" <<<"$out" ||
        fail "status table: expected partition 0 owned by owner-a@HOST, got: $out"

# A worker on a fixed partition is no member: its commits name it.
pool=$(new_pool)
"$KPOOL" topics --pool "$pool" --partitions 2 >/dev/null
worker "$pool" fixed-b --partition 1
"$KPOOL" submit --pool "$pool" --partition 1 x y >/dev/null
"$KPOOL" submit --pool "$pool" --partition 0 z >/dev/null
for _ in $(seq 1 300); do
        run "$KPOOL" status --pool "$pool" --json
        [ "$(jq -r '.partitions[1].lag' <<<"$out")" = 0 ] && break
        sleep 0.1
done
jq -e '.members == 0 and .total_lag == 1 and
        .partitions[1].owner == "fixed-b (last commit)" and
        .partitions[1].last_commit_by == "fixed-b" and
        .partitions[1].committed == 2 and
        .partitions[0].owner == null and .partitions[0].lag == 1' \
        <<<"$out" >/dev/null ||
        fail "status with a fixed-partition worker: expected p1 'fixed-b (last commit)' and p0 unowned with lag 1, got: $out"

echo "$TEST: ok"

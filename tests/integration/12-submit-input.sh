#!/usr/bin/env bash
# kpool submit reads tasks from stdin and from a file, plain text and JSON
# lines mixed; a bad line is a usage error naming its line, and then
# nothing is sent.
. "$(dirname "$0")/lib.sh"

pool=$(new_pool)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

total() {
        "$KPOOL" status --pool "$pool" --json | jq -r .total_end
}

"$KPOOL" topics --pool "$pool" --partitions 2 >/dev/null

# Five tasks: blank lines skipped, CRLF accepted, a JSON id kept.
printf '%s\n' 'What is the capital of France?' '' \
        '{"input": "Two plus two?", "max_tokens": 20}' \
        '{"id": "my-task-1", "input": "Name a colour.", "meta": {"n": 1}}' \
        '   ' 'plain {not json' >"$tmp/tasks.txt"
printf 'windows line\r\n' >>"$tmp/tasks.txt"

run "$KPOOL" submit --pool "$pool" <"$tmp/tasks.txt"
[ "$rc" -eq 0 ] || fail "submit from stdin: expected exit 0, got $rc: $err"
[ "$(wc -l <<<"$out")" -eq 5 ] ||
        fail "submit from stdin: expected 5 ids (blank lines skipped), got: $out"
[ "$(sed -n 3p <<<"$out")" = "my-task-1" ] ||
        fail "submit from stdin: expected the JSON's id third, got: $out"
[ "$(total)" -eq 5 ] || fail "after stdin: expected 5 records, got $(total)"

# The records: key = id; text wrapped as {"id", "input"}; JSON kept.
if command -v kcat >/dev/null; then
        recs=$(kcat -C -b "$KPOOL_BROKERS" -t "$pool.tasks" -e -q -f '%k\t%s\n')
        awk -F'\t' '{ print $2 }' <<<"$recs" | jq -e -s \
                'length == 5 and all(.[]; .id and .submitted_at)' >/dev/null ||
                fail "records: expected 5 tasks with id and submitted_at, got: $recs"
        while IFS=$'\t' read -r key value; do
                [ "$key" = "$(jq -r .id <<<"$value")" ] ||
                        fail "record key $key is not its task's id: $value"
        done <<<"$recs"
        grep -q '"input":"windows line",' <<<"$recs" ||
                fail "records: expected input 'windows line' without CR, got: $recs"
        cut -f2 <<<"$recs" | jq -e -s 'map(select(.id == "my-task-1")) |
                length == 1 and .[0].meta.n == 1 and
                .[0].input == "Name a colour."' >/dev/null || fail "records: my-task-1 lost its fields: $recs"
fi

run "$KPOOL" submit --pool "$pool" -f "$tmp/tasks.txt"
[ "$rc" -eq 0 ] || fail "submit -f: expected exit 0, got $rc: $err"
[ "$(wc -l <<<"$out")" -eq 5 ] || fail "submit -f: expected 5 ids, got: $out"

run "$KPOOL" submit --pool "$pool" - <"$tmp/tasks.txt"
[ "$rc" -eq 0 ] || fail "submit -: expected exit 0, got $rc: $err"
[ "$(total)" -eq 15 ] || fail "after -f and -: expected 15 records, got $(total)"

# --format text sends a '{' line as text; --format json refuses text.
run "$KPOOL" submit --pool "$pool" --format text '{"input": 1}'
[ "$rc" -eq 0 ] || fail "--format text with '{': expected exit 0, got $rc: $err"
run "$KPOOL" submit --pool "$pool" --format json -f "$tmp/tasks.txt"
[ "$rc" -eq 2 ] || fail "--format json with text lines: expected exit 2, got $rc"
grep -q "line 1" <<<"$err" || fail "--format json: expected 'line 1', got: $err"

# A bad JSON line (line 3) stops everything before anything is sent.
printf '%s\n' 'good one' 'good two' '{"input": "unterminated' 'good four' \
        >"$tmp/bad.txt"
run "$KPOOL" submit --pool "$pool" <"$tmp/bad.txt"
[ "$rc" -eq 2 ] || fail "bad JSON line: expected exit 2, got $rc"
grep -q "line 3" <<<"$err" || fail "bad JSON line: expected 'line 3' in: $err"
[ -z "$out" ] || fail "bad JSON line: expected no ids, got: $out"
run "$KPOOL" submit --pool "$pool" -f "$tmp/bad.txt"
[ "$rc" -eq 2 ] || fail "bad JSON line with -f: expected exit 2, got $rc"
grep -q "bad.txt line 3" <<<"$err" ||
        fail "bad JSON line with -f: expected 'bad.txt line 3' in: $err"

# JSON without an "input" string is refused the same way.
run "$KPOOL" submit --pool "$pool" ok '{"max_tokens": 5}'
[ "$rc" -eq 2 ] || fail "JSON without input: expected exit 2, got $rc"
grep -q "argument 2" <<<"$err" || fail "JSON without input: expected 'argument 2' in: $err"

[ "$(total)" -eq 16 ] || fail "refused submits sent records: $(total), expected 16"

# Arguments and -f together are a usage error; a missing file too.
run "$KPOOL" submit --pool "$pool" -f "$tmp/tasks.txt" extra
[ "$rc" -eq 2 ] || fail "arguments and -f: expected exit 2, got $rc"
run "$KPOOL" submit --pool "$pool" -f "$tmp/missing.txt"
[ "$rc" -eq 2 ] || fail "missing file: expected exit 2, got $rc"

echo "$TEST: ok"

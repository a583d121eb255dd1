#!/bin/sh
# Runs `oddone show` as a user would: on the real sample scene it must
# write 20 views and a top view; bad arguments and a missing scene must
# fail with one message and leave no output behind.
# usage: tests/cli_show_check.sh ODDONE_BINARY SAMPLE_SCENE_DIR
set -u
oddone=$1
sample=$2
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
passed=0
failed=0

check() {
    description=$1
    shift
    if "$@"; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        echo "FAIL $description" >&2
    fi
}

"$oddone" show "$sample" -o "$out/sample" --quiet >"$out/stdout" 2>"$out/stderr"
check "show exits 0 on the sample scene" test $? -eq 0
check "show writes 20 views" test "$(ls "$out/sample/views" | grep -c '\.png$')" -eq 20
check "show writes the top view" test -s "$out/sample/top.png"
check "show leaves no temporary file" test "$(find "$out/sample" -name '*.tmp.*' | wc -l)" -eq 0

"$oddone" show "$sample" -o "$out/json" --json --quiet >"$out/summary.json" 2>/dev/null
check "show --json prints the three objects" test "$(grep -o '"anomalous"' "$out/summary.json" | wc -l)" -ge 1

"$oddone" show "$out/no-such-scene" -o "$out/missing" >/dev/null 2>"$out/stderr"
status=$?
check "a missing scene exits 1" test $status -eq 1
check "a missing scene names the path" grep -q "no-such-scene" "$out/stderr"
check "a missing scene writes nothing" test ! -e "$out/missing/top.png"

"$oddone" show "$sample" >/dev/null 2>"$out/stderr"
check "a missing -o is a usage error" test $? -eq 2

"$oddone" show "$sample" -o "$out/bad" --roi 1,2,3 >/dev/null 2>"$out/stderr"
check "a short --roi is a usage error" test $? -eq 2
check "a short --roi is named in the message" grep -q -- "--roi" "$out/stderr"

"$oddone" frobnicate >/dev/null 2>"$out/stderr"
check "an unknown command exits 2" test $? -eq 2

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

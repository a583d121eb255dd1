#!/bin/sh
# Runs the README's first command in an empty folder: generate a scene
# into a nested output path that does not exist yet, then show it. Also
# checks that a path through an existing file is rejected.
# usage: tests/cli_generate_check.sh ODDONE_BINARY
set -u
oddone=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1
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

"$oddone" generate -o out/example --seed 3 --shape torus --objects 4 --views 8 >/dev/null 2>"$work/stderr"
check "generate creates missing parent folders" test $? -eq 0
check "generate writes the scene metadata" test -s out/example/scene_0000/scene3d.metadata.json
check "generate marks the bump in a path" grep -q -- "-bump-" out/example/scene_0000/scene3d.metadata.json

"$oddone" show out/example/scene_0000 -o out/show/nested --quiet >/dev/null 2>"$work/stderr"
check "show creates missing parent folders" test $? -eq 0
check "show writes the 8 views" test "$(ls out/show/nested/views | grep -c '\.png$')" -eq 8
check "show writes the top view" test -s out/show/nested/top.png

touch plain-file
"$oddone" generate -o plain-file/below --views 4 >/dev/null 2>"$work/stderr"
check "a path through a file is an error" test $? -eq 1
check "the error names the file" grep -q "plain-file" "$work/stderr"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

#!/bin/sh
# Runs the README's first command on the shipped example scene: the
# training-free detector on examples/torus-bump, writing into a temporary
# folder. Checks that it finds the four tori, that the object labelled odd
# is the one the scene's ground truth marks as bumped, and that every
# output is written.
# usage: tests/cli_example_check.sh ODDONE_BINARY SOURCE_DIR
set -u
# The binary is made absolute because the script changes folder.
oddone=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
source_dir=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
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

# The detector reads models/cache/ relative to the working folder, as the
# README's command does from the repository root.
cd "$source_dir" || exit 1
"$oddone" detect --method compare examples/torus-bump -o "$work/detect" >"$work/stdout" 2>"$work/stderr"
check "detect on the example succeeds" test $? -eq 0
check "detect prints one line per object" test "$(grep -cE '^ +[0-9]+ +(odd|normal) +score' "$work/stdout")" -eq 4
check "detect writes result.json" test -s "$work/detect/result.json"
check "detect writes the PLY" test -s "$work/detect/scene.ply"
check "detect writes 8 overlays" test "$(ls "$work/detect/overlays" | grep -c '\.png$')" -eq 8
check "detect writes 8 heat maps" test "$(ls "$work/detect/heat" | grep -c '\.png$')" -eq 8

# The bumped torus's centre in the ground truth, and the odd object's
# centre in the result: both must be within 3 cm in x and y.
truth=$("$oddone" show examples/torus-bump -o "$work/show" 2>&1 | grep ' anomalous ' |
        sed -E 's/.*centre \(([-0-9.]+), ([-0-9.]+),.*/\1 \2/')
odd=$(grep -E '^ +[0-9]+ +odd +score' "$work/stdout" | sed -E 's/.*centre \(([-0-9.]+), ([-0-9.]+),.*/\1 \2/')
check "the ground truth has one bumped torus" test -n "$truth"
check "one object is labelled odd" test "$(echo "$odd" | grep -c .)" -eq 1
check "the odd object is the bumped torus" awk -v t="$truth" -v o="$odd" 'BEGIN {
    split(t, a, " "); split(o, b, " ");
    dx = a[1] - b[1]; dy = a[2] - b[2];
    exit !(o != "" && dx * dx + dy * dy < 0.03 * 0.03) }'

echo "$passed passed, $failed failed"
test "$failed" -eq 0

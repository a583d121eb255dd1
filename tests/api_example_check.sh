#!/bin/sh
# Runs the public API's example program (examples/api/detect_example.c) on
# the shipped example scene: with a tiny random model, twice for the same
# output, and with the training-free detector, which must find the four
# tori and label one odd. Then the library's messages for a missing model
# and a missing scene.
# usage: tests/api_example_check.sh EXAMPLE_BINARY MAKE_MODEL_BINARY SOURCE_DIR
set -u
example=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
make_model=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
source_dir=$(cd "$3" && pwd)
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

"$make_model" "$work/tiny.safetensors" 3
check "the tiny model is written" test -s "$work/tiny.safetensors"

# The networks' weights are read from models/cache/ under the working folder.
cd "$source_dir" || exit 1
"$example" examples/torus-bump "$work/tiny.safetensors" >"$work/model1" 2>"$work/stderr"
check "the example runs a model" test $? -eq 0
check "the example prints the object count" grep -qE '^[0-9]+ objects in examples/torus-bump' "$work/model1"
"$example" examples/torus-bump "$work/tiny.safetensors" >"$work/model2" 2>"$work/stderr"
check "two runs print the same objects" cmp -s "$work/model1" "$work/model2"

"$example" examples/torus-bump >"$work/compare" 2>"$work/stderr"
check "the example runs compare" test $? -eq 0
check "compare finds the four tori" grep -q '^4 objects in examples/torus-bump' "$work/compare"
check "compare labels one object odd" test "$(grep -c '^object [0-9]*: odd ' "$work/compare")" -eq 1

"$example" examples/torus-bump "$work/no-such.safetensors" >"$work/stdout" 2>"$work/stderr"
check "a missing model exits 1" test $? -eq 1
check "a missing model is named" grep -q "no-such.safetensors" "$work/stderr"
"$example" "$work/no-such-scene" "$work/tiny.safetensors" >"$work/stdout" 2>"$work/stderr"
check "a missing scene exits 1" test $? -eq 1
check "a missing scene is named" grep -q "no-such-scene" "$work/stderr"

echo "$passed passed, $failed failed"
test "$failed" -eq 0

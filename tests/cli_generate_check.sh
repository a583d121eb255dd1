#!/bin/sh
# Checks `oddone generate` and `oddone show` in an empty folder: generate a
# scene into a nested output path that does not exist yet, then show it.
# Also checks that a path through an existing file is rejected, --shape
# with an OFF file and with a folder of STL and OFF files, the dataset
# options (--recipe, --split-sizes, --objects, a rerun, --contact-sheet)
# and the usage errors.
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
check "generate marks the anomaly in a path" grep -qE -- "-(bump|material|bend|twist|fracture|crack|missing|translated|rotated)-" out/example/scene_0000/scene3d.metadata.json

"$oddone" show out/example/scene_0000 -o out/show/nested --quiet >/dev/null 2>"$work/stderr"
check "show creates missing parent folders" test $? -eq 0
check "show writes the 8 views" test "$(ls out/show/nested/views | grep -c '\.png$')" -eq 8
check "show writes the top view" test -s out/show/nested/top.png

touch plain-file
"$oddone" generate -o plain-file/below --views 4 >/dev/null 2>"$work/stderr"
check "a path through a file is an error" test $? -eq 1
check "the error names the file" grep -q "plain-file" "$work/stderr"

# A tiny dataset: split lists, manifest, and a rerun that skips every scene.
"$oddone" generate -o data --recipe procedural --split-sizes train=2,test=1 --objects 3-4 --views 2 --size 64 \
    --supersample 1 --quiet >/dev/null 2>"$work/stderr"
check "a recipe writes a dataset" test $? -eq 0
check "the train list has 2 scenes" test "$(grep -c scene_ data/splits/train.txt)" -eq 2
check "the test list names its scene" grep -q "^test/scene_0000$" data/splits/test.txt
check "the manifest names the recipe" grep -q '"recipe":.*"procedural"' data/manifest.json
"$oddone" generate -o data --recipe procedural --split-sizes train=2,test=1 --objects 3-4 --views 2 --size 64 \
    --supersample 1 >"$work/stdout" 2>"$work/stderr"
check "a rerun skips the complete scenes" grep -q "3 already complete" "$work/stdout"
check "the progress line counts scenes" grep -q "3/3 scenes" "$work/stderr"
"$oddone" generate --contact-sheet data -o sheet.png --quiet >/dev/null 2>"$work/stderr"
check "the contact sheet is written" test -s sheet.png

# Usage errors exit with 2 and name the option.
expect_usage_error() {
    description=$1
    pattern=$2
    shift 2
    "$oddone" generate "$@" >/dev/null 2>"$work/stderr"
    check "$description exits with 2" test $? -eq 2
    check "$description names $pattern" grep -q -- "$pattern" "$work/stderr"
}
expect_usage_error "an unknown shape word" "--shape" -o bad --shape cube
expect_usage_error "an unknown recipe" "--recipe" -o bad --recipe cars
expect_usage_error "2 objects" "--objects" -o bad --objects 2
expect_usage_error "a reversed object range" "--objects" -o bad --objects 7-3
expect_usage_error "13 objects" "--objects" -o bad --recipe procedural --objects 3-13
expect_usage_error "a split size without a count" "--split-sizes" -o bad --recipe procedural --split-sizes train
expect_usage_error "an unknown option" "--colour" -o bad --colour red
expect_usage_error "a missing value" "--views" -o bad --views
expect_usage_error "an unknown benchmark version" "--bench" -o bad --bench v9
expect_usage_error "a scene setting with --bench" "--views" -o bad --bench v1 --views 4
check "usage errors write nothing" test ! -e bad
"$oddone" generate -o bad --recipe toys --quiet >/dev/null 2>"$work/stderr"
check "toys without meshes fails" test $? -eq 1
check "the error asks for --meshes" grep -q -- "--meshes" "$work/stderr"

# --shape reads OFF and STL files, and a folder's mesh files in name order (other files skipped).
mkdir shapes
cat >shapes/b_tetra.off <<'EOF_OFF'
OFF
4 4 0
0 0 0
1 0 0
0 1 0
0 0 1
3 0 2 1
3 0 1 3
3 0 3 2
3 1 2 3
EOF_OFF
{
    echo "solid wedge"
    for corners in "0 0 0;0 1 0;1 0 0" "0 0 0;1 0 0;0 0 1" "0 0 0;0 0 1;0 1 0" "1 0 0;0 1 0;0 0 1"; do
        echo "facet normal 0 0 0"
        echo "outer loop"
        echo "$corners" | tr ';' '\n' | sed 's/^/vertex /'
        echo "endloop"
        echo "endfacet"
    done
    echo "endsolid wedge"
} >shapes/a_wedge.STL
echo "not a mesh" >shapes/notes.txt
"$oddone" generate -o off --shape shapes/b_tetra.off --views 2 --size 64 >/dev/null 2>"$work/stderr"
check "generate reads an OFF file" test $? -eq 0
check "the OFF file names the shape" grep -q "b_tetra" off/scene_0000/scene3d.metadata.json
"$oddone" generate -o folder --shape shapes --scenes 2 --views 2 --size 64 >/dev/null 2>"$work/stderr"
check "generate reads a folder of STL and OFF files" test $? -eq 0
check "the first scene takes the first file by name" grep -q "a_wedge" folder/scene_0000/scene3d.metadata.json
check "the second scene takes the second file" grep -q "b_tetra" folder/scene_0001/scene3d.metadata.json
mkdir no-meshes
echo "not a mesh" >no-meshes/notes.txt
"$oddone" generate -o none --shape no-meshes --views 2 --size 64 >/dev/null 2>"$work/stderr"
check "a folder without mesh files fails" test $? -eq 1
check "the error names the extensions" grep -q "\.off" "$work/stderr"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

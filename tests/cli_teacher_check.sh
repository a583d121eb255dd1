#!/bin/sh
# Runs `oddone teacher` as a user runs it on two small generated scenes
# with train and test splits. It checks that the PCA and the caches are
# written and that a rerun skips current caches and rewrites missing or
# damaged ones. Bad arguments must give one clear error line.
# usage: tests/cli_teacher_check.sh ODDONE_BINARY SOURCE_DIR
# Needs models/cache/inceptionv3.safetensors (scripts/fetch_weights.sh).
set -u
oddone=$1
source_dir=$2
weights="$source_dir/models/cache/inceptionv3.safetensors"
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

# The value of a "key": "value" pair in a JSON or safetensors header.
json_value() {
    head -c 20000 "$2" | tr -d ' \t\n' | grep -a -o "\"$1\":\"[^\"]*\"" | head -n 1 | cut -d '"' -f 4
}

"$oddone" generate -o data --scenes 2 --views 3 --size 96 --supersample 1 --seed 5 >/dev/null 2>&1
check "generate writes two scenes" test -s data/scene_0001/scene3d.metadata.json
mkdir -p data/splits
echo scene_0000 > data/splits/train.txt
printf '# held out\nscene_0001\n' > data/splits/test.txt

# 299 pixels in place of the default 448 keeps the check short.
cache=data/features/inceptionv3-mixed2-299
run_teacher() {
    "$oddone" teacher data --model inceptionv3 --weights "$weights" --input-size 299 --channels 16 --threads 2 \
        >/dev/null 2>stderr
}
run_teacher
check "teacher succeeds" test $? -eq 0
check "teacher writes the PCA" test -s $cache/pca.safetensors
check "teacher writes the fit settings" test -s $cache/pca.json
check "the PCA is fitted on the train split" test "$(json_value fit_split $cache/pca.json)" = train
check "teacher writes the train scene's cache" test -s $cache/scene_0000.safetensors
check "teacher writes the test scene's cache" test -s $cache/scene_0001.safetensors
checksum=$(json_value pca_checksum $cache/pca.json)
check "pca.json carries a checksum" test -n "$checksum"
check "the cache carries the PCA checksum" test "$(json_value pca_checksum $cache/scene_0000.safetensors)" = "$checksum"
check "the cache names the layer" test "$(json_value layer $cache/scene_0000.safetensors)" = mixed2
check "the progress line gives an ETA" grep -q "ETA" stderr
before=$(cksum $cache/scene_0000.safetensors $cache/pca.safetensors)

run_teacher
check "a rerun succeeds" test $? -eq 0
check "a rerun reuses the PCA" grep -q "reusing" stderr
check "a rerun skips both caches" grep -q "wrote 0 caches and skipped 2" stderr
check "a rerun leaves the files unchanged" test "$(cksum $cache/scene_0000.safetensors $cache/pca.safetensors)" = "$before"

rm $cache/scene_0001.safetensors
head -c 100 $cache/scene_0000.safetensors > truncated && mv truncated $cache/scene_0000.safetensors
run_teacher
check "a rerun after damage succeeds" test $? -eq 0
check "a rerun rewrites the missing and the truncated cache" grep -q "wrote 2 caches and skipped 0" stderr
check "the rewritten cache is as before" test "$(cksum $cache/scene_0000.safetensors $cache/pca.safetensors)" = "$before"

"$oddone" teacher data --model vgg16 >stdout 2>stderr
check "an unknown model is a usage error" test $? -eq 2
check "an unknown model gives one error line" test "$(wc -l < stderr)" -eq 1
check "the error names the model" grep -q "vgg16" stderr

"$oddone" teacher missing-folder --model inceptionv3 --weights "$weights" >/dev/null 2>stderr
check "a missing dataset is an error" test $? -eq 1
check "the error names the dataset" grep -q "missing-folder" stderr

"$oddone" teacher data --model inceptionv3 --weights "$weights" --layer mixed8 >/dev/null 2>stderr
check "a map below 16 x 16 is a usage error" test $? -eq 2
check "the error suggests an input size" grep -q -- "--input-size" stderr

"$oddone" teacher data --model inceptionv3 --weights "$weights" --layer no_such_layer >/dev/null 2>stderr
check "an unknown layer is an error" test $? -eq 1
check "the error names the layer" grep -q "no_such_layer" stderr

# A scene that fails to load is reported and skipped; the others still get
# their caches, and the run fails at the end.
cp -r data/scene_0001 data/scene_0002
echo '{"objects": [' > data/scene_0002/scene3d.metadata.json
echo scene_0002 >> data/splits/test.txt
rm -f $cache/scene_0001.safetensors
run_teacher
check "a broken scene fails the run" test $? -eq 1
check "the broken scene is named" grep -q "scene_0002" stderr
check "the other scene's cache is still written" test -s $cache/scene_0001.safetensors
check "the count of failed scenes is given" grep -q "1 of 3 scenes failed to load" stderr
check "the broken scene has no cache" test ! -e $cache/scene_0002.safetensors

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

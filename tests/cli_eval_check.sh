#!/bin/sh
# Runs `oddone eval --method compare` as a user would, on four tiny
# generated scenes, one of them with a truncated image: the broken scene is
# reported and counted, the others are scored, and every output file is
# written. Then the paired comparison, its rejection of folders with other
# scenes, and one clear error each for a missing dataset, an unknown split,
# --views 0 and a split whose every scene fails.
# usage: tests/cli_eval_check.sh ODDONE_BINARY MOBILENETV2_WEIGHTS
set -u
oddone=$1
weights=$2
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

# Four scenes of three objects, four views of 128 x 128; the last scene's
# first view is cut short, so loading it fails.
"$oddone" generate -o data --scenes 4 --objects 3 --views 4 --size 128 --supersample 1 --seed 4 \
    >/dev/null 2>"$work/stderr"
check "generate exits 0" test $? -eq 0
head -c 100 data/scene_0003/RGB/0000.png >"$work/short.png"
mv "$work/short.png" data/scene_0003/RGB/0000.png
printf '{"version": "check-1"}\n' >data/manifest.json
mkdir -p data/splits
printf '# three good scenes and a broken one\nscene_0000\nscene_0001\n\nscene_0002\nscene_0003\n' \
    >data/splits/test.txt
printf 'scene_0003\n' >data/splits/broken.txt

"$oddone" eval --method compare data --views 3 -o result --resamples 200 --weights "$weights" \
    >"$work/stdout" 2>"$work/stderr"
check "eval exits 0 with one broken scene" test $? -eq 0
check "eval names the broken scene" grep -q "scene 4/4 scene_0003 failed" "$work/stderr"
check "eval prints progress with an ETA" grep -q "scene 1/4 scene_0000: .*ETA" "$work/stderr"
check "eval prints the AUROC row" grep -q "AUROC, pooled" "$work/stdout"
check "eval prints the per-kind table" grep -q "accuracy per anomaly kind" "$work/stdout"
metrics=result/metrics.json
check "metrics.json is written" test -s "$metrics"
check "metrics.json names the dataset" grep -q '"dataset":[[:space:]]*"data"' "$metrics"
check "metrics.json picks the test split" grep -q '"split":[[:space:]]*"test"' "$metrics"
check "metrics.json names the method" grep -q '"method":[[:space:]]*"compare"' "$metrics"
check "metrics.json records the views" grep -q '"views":[[:space:]]*3' "$metrics"
check "metrics.json carries the manifest version" grep -q '"benchmark_version":[[:space:]]*"check-1"' "$metrics"
check "metrics.json counts the failed scene" grep -q '"failed":[[:space:]]*1' "$metrics"
check "metrics.json lists the failure" grep -q '"scene":[[:space:]]*"scene_0003"' "$metrics"
check "metrics.json counts the evaluated scenes" grep -q '"evaluated":[[:space:]]*3' "$metrics"
for field in pooled scene_mean scenes_skipped accuracy top1_hit_rate box_miou count_accuracy \
    accuracy_per_kind accuracy_per_object_count interval; do
    check "metrics.json has $field" grep -q "\"$field\"" "$metrics"
done
check "scenes.csv has a row per scene" test "$(wc -l <result/scenes.csv)" -eq 5
check "scenes.csv marks the broken scene" grep -q "^scene_0003,failed," result/scenes.csv
check "scenes.csv lists 3 views per scene" grep -q "^scene_0000,ok,[0-9]* [0-9]* [0-9]*," result/scenes.csv
check "objects.csv has a row per true object" test "$(wc -l <result/objects.csv)" -eq 10
check "roc.svg is written" grep -q "<svg" result/roc.svg
check "no temporary file is left" test "$(find result -name '*.tmp.*' | wc -l)" -eq 0

check "metrics.json records the teacher" grep -q '"teacher":[[:space:]]*"mobilenetv2"' "$metrics"
check "metrics.json records the layer" grep -q '"layer":[[:space:]]*"block_6_expand_relu"' "$metrics"
check "metrics.json records the occupancy" grep -q '"occupancy":[[:space:]]*"auto"' "$metrics"

# The colour-histogram floor needs no weights.
"$oddone" eval --method compare data --views 3 -o floor --resamples 50 --features colour --occupancy masks \
    --weights no-such-weights >"$work/stdout" 2>"$work/stderr"
check "eval with colour features exits 0" test $? -eq 0
check "metrics.json records colour features" grep -q '"features":[[:space:]]*"colour"' floor/metrics.json
check "metrics.json records the histogram" grep -q '"layer":[[:space:]]*"histogram"' floor/metrics.json
check "metrics.json records masks occupancy" grep -q '"occupancy":[[:space:]]*"masks"' floor/metrics.json
check "the table names the colour features" grep -q "features: colour histograms" "$work/stdout"

"$oddone" eval --paired result result --resamples 100 -o paired >"$work/stdout" 2>"$work/stderr"
check "paired comparison of a folder with itself exits 0" test $? -eq 0
check "paired comparison prints the AUROC difference" grep -q "AUROC, pooled .* +0.000" "$work/stdout"
check "paired comparison writes paired.json" grep -q '"pooled_auroc"' paired/paired.json
check "paired.json has the interval" grep -q '"interval"' paired/paired.json

mkdir fewer
head -n 3 result/scenes.csv >fewer/scenes.csv
grep -v "^scene_0002," result/objects.csv >fewer/objects.csv
"$oddone" eval --paired result fewer >"$work/stdout" 2>"$work/stderr"
check "paired comparison of other scenes fails" test $? -eq 1
check "paired comparison says the scenes differ" grep -q "needs the same scenes" "$work/stderr"
check "paired comparison prints one error" test "$(wc -l <"$work/stderr")" -eq 1

# usage: expect_error WHAT STATUS PATTERN LINES COMMAND...
expect_error() {
    what=$1
    status=$2
    pattern=$3
    lines=$4
    shift 4
    "$@" >"$work/stdout" 2>"$work/stderr"
    check "$what exits $status" test $? -eq "$status"
    check "$what names the problem" grep -q -- "$pattern" "$work/stderr"
    check "$what prints $lines error line(s)" test "$(wc -l <"$work/stderr")" -eq "$lines"
}

expect_error "a missing dataset" 1 "no-such-data" 1 "$oddone" eval --method compare no-such-data -o bad1
check "a missing dataset writes nothing" test ! -e bad1
expect_error "an unknown split" 1 "nope" 1 "$oddone" eval --method compare data --split nope -o bad2
expect_error "missing weights" 1 "no-such-weights" 1 \
    "$oddone" eval --method compare data -o bad5 --weights no-such-weights
check "missing weights write nothing" test ! -e bad5
expect_error "an unknown teacher" 2 "--teacher" 1 "$oddone" eval --method compare data --teacher vgg -o bad6
expect_error "unknown features" 2 "--features expects teacher or colour" 1 \
    "$oddone" eval --method compare data --features depth -o bad7
expect_error "an unknown occupancy" 2 "--occupancy expects auto, masks or colour" 1 \
    "$oddone" eval --method compare data --occupancy lidar -o bad8
expect_error "--views 0" 2 "--views expects an integer" 1 "$oddone" eval --method compare data --views 0 -o bad3
# The scene's own error, then the summary.
expect_error "a split whose scenes all fail" 1 "all 1 scenes failed" 2 \
    "$oddone" eval --method compare data --split broken -o bad4 --weights "$weights" --quiet
check "a failed evaluation writes no metrics" test ! -e bad4/metrics.json

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

#!/bin/sh
# Runs `oddone detect MODEL SCENE` as a user would, with a tiny random
# model on the shipped example scene. Checks the outputs, that two runs
# give the same objects and scores, and the default model. Checks the
# errors for a missing or truncated model and for options of the other
# method. Then runs `oddone eval --method model`, and detection with a
# model that `oddone train` writes. Not accuracy: the models are barely
# trained.
# usage: tests/cli_detect_model_check.sh ODDONE_BINARY MAKE_MODEL_BINARY SOURCE_DIR
set -u
# The binaries are made absolute because the script changes folder.
oddone=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
make_model=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
source_dir=$(cd "$3" && pwd)
scene=$source_dir/examples/torus-bump
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

# usage: expect_error WHAT STATUS PATTERN COMMAND...
expect_error() {
    what=$1
    status=$2
    pattern=$3
    shift 3
    "$@" >"$work/stdout" 2>"$work/stderr"
    check "$what exits $status" test $? -eq "$status"
    check "$what names the problem" grep -q -- "$pattern" "$work/stderr"
    check "$what prints one error line" test "$(grep -c 'oddone detect:' "$work/stderr")" -eq 1
}

# The object lines of the summary, without the timing line.
objects() {
    grep -E '^ +[0-9]+ +(odd|normal) +score' "$1"
}

"$make_model" "$work/tiny.safetensors" 5
check "the tiny model is written" test -s "$work/tiny.safetensors"

# The encoder's weights are read from models/cache/ relative to the
# working folder, as from the repository root.
cd "$source_dir" || exit 1
"$oddone" detect "$work/tiny.safetensors" "$scene" -o "$work/first" --views 0,2,4,6 >"$work/stdout1" 2>"$work/stderr"
check "detect with a model succeeds" test $? -eq 0
check "detect prints at least one object" test "$(objects "$work/stdout1" | grep -c .)" -ge 1
check "result.json is written" test -s "$work/first/result.json"
check "result.json names the method" grep -q '"method":[[:space:]]*"model"' "$work/first/result.json"
check "result.json names the encoder" grep -q '"layer":[[:space:]]*"block_2_add"' "$work/first/result.json"
check "result.json has the timings" grep -q '"volume_network":' "$work/first/result.json"
check "the PLY is written" test -s "$work/first/scene.ply"
check "4 overlays are written" test "$(ls "$work/first/overlays" | grep -c '\.png$')" -eq 4
check "4 heat maps are written" test "$(ls "$work/first/heat" | grep -c '\.png$')" -eq 4

"$oddone" detect --model "$work/tiny.safetensors" "$scene" -o "$work/second" --views 0,2,4,6 \
    >"$work/stdout2" 2>"$work/stderr"
check "detect with --model succeeds" test $? -eq 0
objects "$work/stdout1" >"$work/objects1"
objects "$work/stdout2" >"$work/objects2"
check "two runs give the same objects and scores" cmp -s "$work/objects1" "$work/objects2"

"$oddone" detect "$work/tiny.safetensors" "$scene" -o "$work/threshold" --views 0,2,4,6 \
    --density-threshold 1e5 >"$work/stdout" 2>"$work/stderr"
check "detect with --density-threshold succeeds" test $? -eq 0
check "result.json records the density threshold" \
    grep -q '"density_threshold":[[:space:]]*100000' "$work/threshold/result.json"
check "a threshold above every density finds no object" \
    grep -q '"objects":[[:space:]]*\[\]' "$work/threshold/result.json"
expect_error "a zero density threshold" 2 "expects a number above 0" \
    "$oddone" detect "$work/tiny.safetensors" "$scene" -o "$work/bad0" --density-threshold 0
expect_error "a density threshold with compare" 2 "applies to the method model only" \
    "$oddone" detect --method compare "$scene" -o "$work/bad0" --density-threshold 0.3
check "rejected thresholds write nothing" test ! -e "$work/bad0"

"$oddone" detect "$work/tiny.safetensors" "$scene" -o "$work/masks" --views 0,2,4,6 --boxes masks \
    >"$work/stdout" 2>"$work/stderr"
check "detect with --boxes masks succeeds" test $? -eq 0
check "result.json records the box source" grep -q '"boxes":[[:space:]]*"masks"' "$work/masks/result.json"
check "boxes from masks find the four tori" test "$(objects "$work/stdout" | grep -c .)" -eq 4
expect_error "an unknown box source" 2 "expects density or masks" \
    "$oddone" detect "$work/tiny.safetensors" "$scene" -o "$work/bad0" --boxes hull

# A model whose configuration sets localization.boxes to masks finds the
# same four tori without --boxes, and --boxes density overrides it.
"$make_model" "$work/tiny-masks.safetensors" 5 nan masks
check "the tiny masks model is written" test -s "$work/tiny-masks.safetensors"
"$oddone" detect "$work/tiny-masks.safetensors" "$scene" -o "$work/masks-default" --views 0,2,4,6 \
    >"$work/stdout5" 2>"$work/stderr"
check "detect with the masks model succeeds" test $? -eq 0
check "the model's box source is recorded" grep -q '"boxes":[[:space:]]*"masks"' "$work/masks-default/result.json"
check "the model's box source finds the four tori" test "$(objects "$work/stdout5" | grep -c .)" -eq 4
"$oddone" detect "$work/tiny-masks.safetensors" "$scene" -o "$work/masks-density" --views 0,2,4,6 --boxes density \
    >"$work/stdout6" 2>"$work/stderr"
check "--boxes density overrides the model's box source" \
    grep -q '"boxes":[[:space:]]*"density"' "$work/masks-density/result.json"

# The default model, in a folder that has one.
mkdir -p "$work/project/models"
cp "$work/tiny.safetensors" "$work/project/models/oddone-cpu.safetensors"
ln -s "$source_dir/models/cache" "$work/project/models/cache"
cd "$work/project" || exit 1
"$oddone" detect "$scene" -o "$work/default" --views 0,2,4,6 >"$work/stdout3" 2>"$work/stderr"
check "detect with the default model succeeds" test $? -eq 0
check "the default model gives the same objects" sh -c "grep -E '^ +[0-9]+ +(odd|normal) +score' '$work/stdout3' |
    cmp -s - '$work/objects1'"

# Without a default model, the error names the file and --method compare.
mkdir -p "$work/empty"
cd "$work/empty" || exit 1
expect_error "no default model" 2 "models/oddone-cpu.safetensors" "$oddone" detect "$scene" -o out
check "no default model suggests compare" grep -q -- "--method compare" "$work/stderr"
check "no default model writes nothing" test ! -e out

cd "$work/project" || exit 1
expect_error "a missing model" 1 "$work/no-such.safetensors" \
    "$oddone" detect "$work/no-such.safetensors" "$scene" -o "$work/bad1"
check "a missing model writes nothing" test ! -e "$work/bad1"
head -c 1000 "$work/tiny.safetensors" >"$work/cut.safetensors"
expect_error "a truncated model" 1 "$work/cut.safetensors" \
    "$oddone" detect "$work/cut.safetensors" "$scene" -o "$work/bad2"
expect_error "a model with compare" 2 "takes no model" \
    "$oddone" detect --method compare "$work/tiny.safetensors" "$scene" -o "$work/bad3"
expect_error "a compare option with a model" 2 "--teacher applies to --method compare only" \
    "$oddone" detect "$work/tiny.safetensors" "$scene" -o "$work/bad4" --teacher inceptionv3
expect_error "an unknown method" 2 "expected model or compare" \
    "$oddone" detect --method magic "$scene" -o "$work/bad5"
expect_error "a view out of range" 1 "out of range" \
    "$oddone" detect "$work/tiny.safetensors" "$scene" -o "$work/bad6" --views 0,99

# oddone eval --method model on two tiny generated scenes.
cd "$work" || exit 1
"$oddone" generate -o data --scenes 2 --objects 3 --views 4 --size 128 --supersample 1 --seed 4 \
    >/dev/null 2>"$work/stderr"
check "generate exits 0" test $? -eq 0
cd "$source_dir" || exit 1
"$oddone" eval --method model --model "$work/tiny.safetensors" "$work/data" --views 3 -o "$work/eval" \
    --resamples 50 >"$work/stdout" 2>"$work/stderr"
check "eval with a model exits 0" test $? -eq 0
check "metrics.json names the method" grep -q '"method":[[:space:]]*"model"' "$work/eval/metrics.json"
check "metrics.json names the model" grep -q '"variant":[[:space:]]*"full"' "$work/eval/metrics.json"
check "eval writes scenes.csv" test -s "$work/eval/scenes.csv"
cd "$work/empty" || exit 1
"$oddone" eval --method model "$work/data" -o "$work/bad7" >"$work/stdout" 2>"$work/stderr"
check "eval without a model exits 2" test $? -eq 2
check "eval without a model asks for --model" grep -q -- "--method model needs --model" "$work/stderr"
"$oddone" eval --method model --model "$work/tiny.safetensors" "$work/data" -o "$work/bad8" --teacher dinov2 \
    >"$work/stdout" 2>"$work/stderr"
check "eval with a compare option exits 2" test $? -eq 2

# A model that `oddone train` writes opens and runs: 2 + 2 steps of a
# tiny configuration on two generated scenes with a MobileNetV2 teacher.
cd "$work" || exit 1
"$oddone" generate -o trainset --recipe procedural --split-sizes train=2 --views 10 --size 64 --objects 3 \
    --supersample 1 --seed 5 >/dev/null 2>"$work/stderr"
check "generate the training set exits 0" test $? -eq 0
weights=$source_dir/models/cache/mobilenetv2.safetensors
"$oddone" teacher trainset --model mobilenetv2 --weights "$weights" --input-size 128 --channels 8 --quiet \
    2>"$work/stderr"
check "teacher exits 0" test $? -eq 0
cat >train.json <<'JSON'
{
  "name": "train-check",
  "variant": "full",
  "image": {"width": 64, "height": 64},
  "views": {"build": 5, "supervise": 5, "batch": 1},
  "grid": {"min": [-0.64, -0.64, 0.0], "max": [0.64, 0.64, 0.32], "voxel_size": 0.08},
  "encoder2d": {"channels": 32},
  "volume_net": {"channels": [4, 8], "down_blocks": [1, 1], "up_blocks": [1], "head_hidden": 8,
                 "batchnorm_momentum": 0.1},
  "teacher": {"network": "mobilenetv2", "layer": "block_6_expand_relu", "input_size": 128, "channels": 8},
  "render": {"samples_per_ray": 16, "colour_size": 16, "mask_size": 8, "feature_size": 8},
  "localization": {"density_threshold": 0.5},
  "crop": {"cells": 8, "pad_voxels": 2},
  "matcher": {"channels": 16, "heads": 8, "blocks": 1, "top_k": 4},
  "loss": {"colour": 1.0, "mask": 1.0, "feature": 1.0, "floor_pixel_weight": 0.1, "classification": 1.0,
           "reconstruction_stage2": 0.1, "anomaly_weight": 0.7, "normal_weight": 0.3},
  "optim": {"lr_backbone": 1e-3, "lr_matcher": 2e-3, "beta1": 0.0, "beta2": 0.999, "eps": 1e-8,
            "clip_grad_norm": 1.0},
  "schedule": {"stage1_steps": 2, "stage2_steps": 2, "warmup_steps": 1, "log_every": 1, "preview_every": 2,
               "checkpoint_every": 2},
  "augment": {"rotation_degrees": 150, "translation": 0.1, "flips": true}
}
JSON
"$oddone" train train.json --data trainset --weights "$weights" --threads 2 --out trained --quiet \
    2>"$work/stderr"
check "train exits 0" test $? -eq 0
"$oddone" detect trained/model.safetensors trainset/train/scene_0000 -o "$work/trained-detect" \
    --weights "$weights" --views 0,2,4,6,8 >"$work/stdout" 2>"$work/stderr"
check "detect runs the trained model" test $? -eq 0
check "the trained model's result.json is written" test -s "$work/trained-detect/result.json"

# The shipped model on the shipped example that the README's first command
# runs: six boxes, the fractured one at (0.015, -0.173) on the table. Its
# box from the masks' visual hull is centred at (0.010, -0.160).
"$oddone" detect "$source_dir/models/oddone-cpu.safetensors" "$source_dir/examples/box-fracture" \
    -o "$work/shipped" --weights "$weights" >"$work/stdout7" 2>"$work/stderr"
check "detect runs the shipped model" test $? -eq 0
check "the shipped model takes its boxes from the masks" \
    grep -q '"boxes":[[:space:]]*"masks"' "$work/shipped/result.json"
check "the shipped model finds the six boxes" test "$(objects "$work/stdout7" | grep -c .)" -eq 6
odd_lines=$(objects "$work/stdout7" | grep ' odd ')
check "the shipped model labels one box odd" test "$(printf '%s\n' "$odd_lines" | grep -c .)" -eq 1
check "the odd box is the fractured one" sh -c "printf '%s\n' '$odd_lines' | grep -q 'centre (0.010, -0.160'"

# Without masks, the shipped model's box source cannot work: one error that
# names the scene and the way out.
cp -r "$source_dir/examples/box-fracture" "$work/no-masks"
rm -rf "$work/no-masks/segmentations"
expect_error "a scene without masks for a masks model" 1 "has no object mask.*--method compare" \
    "$oddone" detect "$source_dir/models/oddone-cpu.safetensors" "$work/no-masks" -o "$work/bad-masks" \
    --weights "$weights"
check "a scene without masks writes nothing" test ! -e "$work/bad-masks"

echo "$passed passed, $failed failed"
test "$failed" -eq 0

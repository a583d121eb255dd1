#!/bin/sh
# Runs `oddone train` on a tiny configuration and two generated scenes: 20
# steps of each stage in one run and 10 + 10 with resumes give
# bit-identical parameters, Adam state and model file, the run folder
# contains its files, and bad input
# (a missing configuration field, an empty split, a run folder of another
# configuration, a missing teacher cache, --resume without a checkpoint)
# fails with one clear message. The teacher is MobileNetV2 at 128 pixels so
# that its caches take seconds.
# usage: tests/cli_train_check.sh ODDONE_BINARY MOBILENETV2_WEIGHTS
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

"$oddone" generate -o data --recipe procedural --split-sizes train=2 --views 10 --size 64 --objects 3 \
    --supersample 1 --seed 5 >/dev/null 2>"$work/stderr"
check "generate exits 0" test $? -eq 0
"$oddone" teacher data --model mobilenetv2 --weights "$weights" --input-size 128 --channels 8 --quiet \
    2>"$work/stderr"
check "teacher exits 0" test $? -eq 0

# A 16 x 16 x 4 grid of 8 cm voxels, two levels of 4 and 8 channels.
cat >tiny.json <<'JSON'
{
  "name": "tiny",
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
  "schedule": {"stage1_steps": 20, "stage2_steps": 20, "warmup_steps": 5, "log_every": 5, "preview_every": 10,
               "checkpoint_every": 10},
  "augment": {"rotation_degrees": 150, "translation": 0.1, "flips": true}
}
JSON

train() {
    "$oddone" train tiny.json --data data --weights "$weights" --threads 2 "$@"
}

train --out straight --quiet 2>"$work/stderr"
check "both stages exit 0" test $? -eq 0
check "straight run writes config.json" test -s straight/config.json
check "straight run logs 40 steps" test "$(wc -l <straight/losses.csv)" -eq 41
check "straight run writes 2 previews" test "$(ls straight/previews | grep -c '\.png$')" -eq 2
check "straight run keeps one checkpoint" test "$(ls straight/stage1 | grep -c '^params-')" -eq 1
check "straight run writes the model" test -s straight/model.safetensors
check "straight run scores its training scenes" grep -q '"top_is_anomalous"' straight/fit.json

train --out split --stage 1 --steps 10 --quiet 2>"$work/stderr"
check "first 10 steps exit 0" test $? -eq 0
train --out split --stage 1 --resume 2>"$work/stderr"
check "resumed 10 steps exit 0" test $? -eq 0
check "resume names its step" grep -q "resumes from step 10" "$work/stderr"
check "resume gives identical parameters" \
    cmp -s straight/stage1/params-00000020.safetensors split/stage1/params-00000020.safetensors
check "resume gives identical Adam state" \
    cmp -s straight/stage1/adam-00000020.safetensors split/stage1/adam-00000020.safetensors
check "resume logs each step once" test "$(wc -l <split/losses.csv)" -eq 21

train --out split --stage 1 2>"$work/stderr"
check "rerunning a finished stage exits 0" test $? -eq 0
check "rerunning a finished stage says it is done" grep -q "stage 1 is done" "$work/stderr"

train --out split --stage 2 --steps 10 --quiet 2>"$work/stderr"
check "first 10 stage-2 steps exit 0" test $? -eq 0
train --out split 2>"$work/stderr"
check "resumed stage 2 exits 0" test $? -eq 0
check "stage-2 resume gives identical parameters" \
    cmp -s straight/stage2/params-00000020.safetensors split/stage2/params-00000020.safetensors
check "stage-2 resume gives identical Adam state" \
    cmp -s straight/stage2/adam-00000020.safetensors split/stage2/adam-00000020.safetensors
check "stage-2 resume gives an identical model" cmp -s straight/model.safetensors split/model.safetensors

train --out from-init --stage 2 --steps 2 --init straight --quiet 2>"$work/stderr"
check "--init with a run folder exits 0" test $? -eq 0
train --out no-stage1 --stage 2 --steps 2 2>"$work/stderr"
check "stage 2 without stage 1 exits 1" test $? -eq 1
check "stage 2 without stage 1 says how to fix it" grep -q "run --stage 1 first" "$work/stderr"

# bad input
grep -v '"crop"' tiny.json >no-crop.json
"$oddone" train no-crop.json --data data --out bad1 --weights "$weights" 2>"$work/stderr"
check "a missing field exits 1" test $? -eq 1
check "a missing field is named" grep -q "crop" "$work/stderr"

mkdir -p data/splits
printf '# nothing here\n' >data/splits/empty.txt
train --out bad2 --split empty 2>"$work/stderr"
check "an empty split exits 1" test $? -eq 1
check "an empty split is named" grep -q "empty" "$work/stderr"
check "an empty split writes no run folder" test ! -e bad2

sed 's/"lr_backbone": 1e-3/"lr_backbone": 2e-3/' tiny.json >other.json
"$oddone" train other.json --data data --out straight --weights "$weights" 2>"$work/stderr"
check "another configuration exits 1" test $? -eq 1
check "another configuration is named" grep -q "another configuration" "$work/stderr"

rm data/features/mobilenetv2-block_6_expand_relu-128/train/scene_0001.safetensors
train --out bad3 2>"$work/stderr"
check "a missing cache exits 1" test $? -eq 1
check "a missing cache names the teacher command" grep -q "oddone teacher data --model mobilenetv2" "$work/stderr"

train --out fresh --resume 2>"$work/stderr"
check "--resume without a checkpoint exits 1" test $? -eq 1
check "--resume without a checkpoint writes no run folder" test ! -e fresh

"$oddone" train tiny.json --data data --out bad5 --stage 3 2>"$work/stderr"
check "an invalid stage is a usage error" test $? -eq 2

echo "cli_train_check: $passed passed, $failed failed"
test "$failed" -eq 0

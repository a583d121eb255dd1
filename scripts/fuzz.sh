#!/bin/sh
# Fuzzes one target with libFuzzer (clang) and AddressSanitizer, adding new
# inputs to its corpus under tests/fuzz/corpus/TARGET/, then minimises the
# corpus. Crashes land in fuzz-out/TARGET/. Needs scripts/setup.sh --dev.
#
# usage: scripts/fuzz.sh TARGET [SECONDS]     e.g. scripts/fuzz.sh safetensors 600
set -eu
cd "$(dirname "$0")/.."
target=${1:?usage: scripts/fuzz.sh TARGET [SECONDS]}
seconds=${2:-600}
source=tests/fuzz/fuzz_$target.c
[ -f "$source" ] || { echo "fuzz: $source not found" >&2; exit 2; }

out=fuzz-out/$target
mkdir -p "$out/new" "tests/fuzz/corpus/$target"
library_sources=$(find src -name '*.c' ! -path 'src/cli/*')
# shellcheck disable=SC2086
clang -std=c11 -D_POSIX_C_SOURCE=200809L -O1 -g -fsanitize=fuzzer,address,undefined \
    -fno-sanitize-recover=undefined -Isrc -Iinclude -fopenmp \
    "$source" $library_sources -o "$out/fuzzer" \
    $(pkg-config --cflags --libs libcjson libpng) -ljpeg -ldnnl -lm
"$out/fuzzer" -max_total_time="$seconds" -artifact_prefix="$out/" -print_final_stats=1 \
    "$out/new" "tests/fuzz/corpus/$target" 2>&1 | tail -20 || true
mkdir -p "$out/minimized"
"$out/fuzzer" -merge=1 "$out/minimized" "tests/fuzz/corpus/$target" "$out/new" >/dev/null 2>&1
rm -rf "tests/fuzz/corpus/$target"
mv "$out/minimized" "tests/fuzz/corpus/$target"
echo "fuzz: corpus now has $(ls "tests/fuzz/corpus/$target" | wc -l) inputs; crashes: $(ls "$out" | grep -c -E '^(crash|leak|timeout|oom)-' || true)"

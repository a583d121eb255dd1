#!/bin/sh
# Runs every C benchmark and its PyTorch peer in one run, on the same
# threads, and prints one table: C time, GFLOP/s, fraction of this
# machine's measured FP32 peak, PyTorch time, and PyTorch time / C time.
#
# usage: bench/run.sh [BUILD_DIR] [FILTER]
#   BUILD_DIR  a Release build (default: build)
#   FILTER     run only bench_FILTER / torch_FILTER (default: all)
# The thread count is OMP_NUM_THREADS (default 2) on both sides.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-build}
filter=${2:-}
python=${PYTHON:-/usr/bin/python3}
: "${OMP_NUM_THREADS:=2}"
export OMP_NUM_THREADS

if [ ! -x "$build/bench/bench_peak" ]; then
    echo "bench/run.sh: $build/bench/bench_peak not found; build first (cmake --build $build)" >&2
    exit 2
fi
lines=$(mktemp)
trap 'rm -f "$lines"' EXIT

echo "bench: measuring the FMA peak on $OMP_NUM_THREADS threads" >&2
"$build/bench/bench_peak" | sed 's/^BENCH/PEAK/' >>"$lines"
for program in "$build"/bench/bench_*; do
    name=$(basename "$program")
    [ "$name" = bench_peak ] && continue
    [ -n "$filter" ] && [ "$name" != "bench_$filter" ] && continue
    echo "bench: $name" >&2
    "$program" | grep '^BENCH' | sed 's/^BENCH/C/' >>"$lines"
    peer="$here/torch_${name#bench_}.py"
    if [ -f "$peer" ]; then
        echo "bench: $(basename "$peer")" >&2
        "$python" "$peer" | grep '^BENCH' | sed 's/^BENCH/TORCH/' >>"$lines"
    fi
done
"$python" "$here/report.py" "$lines"

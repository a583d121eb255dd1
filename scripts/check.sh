#!/bin/sh
# Runs the whole test suite: fetches the pretrained networks, runs every
# test of the optimized build (unit, weights and slow), then the unit and
# weights tests again in a build with AddressSanitizer and
# UndefinedBehaviorSanitizer. Prints one closing "N passed, N failed" line
# that counts both runs, and exits non-zero when any test failed.
set -u
cd "$(dirname "$0")/.."
jobs=${JOBS:-2}
passed=0
failed=0

# Runs ctest in build folder $1 with the extra arguments that follow, and
# adds its counts to the totals.
run_ctest() {
    folder=$1
    shift
    log=$(mktemp)
    (cd "$folder" && ctest --output-on-failure -j"$jobs" "$@") 2>&1 | tee "$log"
    summary=$(grep -E '^[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -1)
    rm -f "$log"
    if [ -z "$summary" ]; then
        echo "check: ctest in $folder printed no summary" >&2
        failed=$((failed + 1))
        return
    fi
    total=$(echo "$summary" | sed -E 's/.* out of ([0-9]+).*/\1/')
    bad=$(echo "$summary" | sed -E 's/.*passed, ([0-9]+) tests? failed.*/\1/')
    passed=$((passed + total - bad))
    failed=$((failed + bad))
}

build_tree() {
    folder=$1
    shift
    if ! cmake -S . -B "$folder" "$@" >/dev/null || ! cmake --build "$folder" -j"$jobs" >/dev/null; then
        echo "check: building $folder failed; rerun: cmake --build $folder" >&2
        failed=$((failed + 1))
        return 1
    fi
}

echo "check: fetching and converting the pretrained networks" >&2
if ! scripts/fetch_weights.sh >/dev/null; then
    echo "check: scripts/fetch_weights.sh failed; the weights tests will fail too" >&2
fi

echo "check: optimized build, all tests" >&2
if build_tree build -DCMAKE_BUILD_TYPE=Release; then
    run_ctest build
fi

echo "check: sanitizer build, unit and weights tests" >&2
if build_tree build-sanitize -DCMAKE_BUILD_TYPE=Debug -DODDONE_SANITIZE=ON; then
    # Only oddone's own code is instrumented: oneDNN's JIT kernels and the
    # OpenMP runtime come from Debian's uninstrumented libraries.
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        run_ctest build-sanitize -L "unit|weights"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

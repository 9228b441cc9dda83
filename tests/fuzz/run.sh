#!/usr/bin/env bash
# Runs every libFuzzer target for SECONDS on a working copy of its seed corpus (new inputs
# stay in build/fuzz/, the repository's seeds are not touched). Prints TAP-style lines.
# A target (tests/fuzz/fuzz_*.c) without its binary, a crash, or a run that the timeout cut
# before libFuzzer said "Done N runs" is a failure: a fuzzer that did not run proves nothing.
# usage: tests/fuzz/run.sh [SECONDS]
set -u
cd "$(dirname "$0")/../.." || exit 2
secs=${1:-60}
rc=0
n=0
for src in tests/fuzz/fuzz_*.c; do
    [ -e "$src" ] || continue
    name=${src##*/fuzz_}
    name=${name%.c}
    bin=build/fuzz/fuzz_$name
    n=$((n + 1))
    if [ ! -x "$bin" ]; then
        echo "not ok - fuzz $name: $bin is not built (make fuzz-build)"
        rc=1
        continue
    fi
    work=build/fuzz/corpus-$name
    mkdir -p "$work" "build/fuzz/crash-$name"
    log=build/fuzz/$name.log
    timeout $((secs + 60)) "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="build/fuzz/crash-$name/" "$work" "tests/fuzz/corpus/$name" >"$log" 2>&1
    st=$?
    done_line=$(grep -oE 'Done [0-9]+ runs' "$log" | tail -1)
    if [ "$st" -eq 0 ] && [ -n "$done_line" ]; then
        echo "ok - fuzz $name for ${secs}s: $done_line"
    elif [ "$st" -eq 124 ]; then
        echo "not ok - fuzz $name was cut by the timeout after $((secs + 60))s (see $log)"
        tail -3 "$log" | sed 's/^/#   /'
        rc=1
    elif [ "$st" -eq 0 ]; then
        echo "not ok - fuzz $name exited 0 without \"Done N runs\" (see $log)"
        tail -3 "$log" | sed 's/^/#   /'
        rc=1
    else
        echo "not ok - fuzz $name found a problem (status $st, see $log and build/fuzz/crash-$name/)"
        grep -E 'ERROR|SUMMARY|runtime error' "$log" | head -5 | sed 's/^/#   /'
        rc=1
    fi
done
if [ "$n" -eq 0 ]; then
    echo "not ok - no fuzz target found in tests/fuzz/"
    rc=1
fi
exit $rc

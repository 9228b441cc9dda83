#!/usr/bin/env bash
# Runs every libFuzzer target for SECONDS on a working copy of its seed corpus (new inputs
# stay in build/fuzz/, the repository's seeds are not touched). Prints TAP-style lines.
# usage: tests/fuzz/run.sh [SECONDS]
set -u
cd "$(dirname "$0")/../.." || exit 2
secs=${1:-60}
rc=0
for bin in build/fuzz/fuzz_*; do
    [ -x "$bin" ] || continue
    name=${bin##*/fuzz_}
    work=build/fuzz/corpus-$name
    mkdir -p "$work" "build/fuzz/crash-$name"
    log=build/fuzz/$name.log
    if timeout $((secs + 60)) "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="build/fuzz/crash-$name/" "$work" "tests/fuzz/corpus/$name" >"$log" 2>&1; then
        echo "ok - fuzz $name for ${secs}s: $(grep -oE 'Done [0-9]+ runs' "$log" | tail -1)"
    else
        echo "not ok - fuzz $name found a problem (see $log and build/fuzz/crash-$name/)"
        grep -E 'ERROR|SUMMARY|runtime error' "$log" | head -5 | sed 's/^/#   /'
        rc=1
    fi
done
exit $rc

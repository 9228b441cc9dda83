#!/usr/bin/env bash
# Runs the unit tests (cmocka, TAP output) and the integration tests (numbered shell scripts
# that print TAP-style "ok - ..." / "not ok - ..." lines) and prints "N passed, N failed" last.
# usage: tests/run.sh all|unit|integration BUILD_DIR [PATTERN]
set -u
mode=${1:-all}
build=${2:-build}
pattern=${3:-${TESTS:-}}
cd "$(dirname "$0")/.." || exit 2
top=$(pwd)
export TS_TOP=$top TS_BUILD=$top/$build TS_BIN=$top/$build/tessera TS_PROBE=$top/$build/tlsprobe

passed=0
failed=0
failures=()
logdir=$(mktemp -d /tmp/tessera-tests.XXXXXX)

# Tally TAP lines from a log; a script that fails without saying why counts as one failure.
tally() { # name log exit_status
    local name=$1 log=$2 rc=$3 p f
    p=$(grep -cE '^ok( |$)' "$log")
    f=$(grep -cE '^not ok( |$)' "$log")
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        f=1
        echo "not ok - $name exited with status $rc" >>"$log"
    fi
    passed=$((passed + p))
    failed=$((failed + f))
    printf '%-40s %4d passed %4d failed\n' "$name" "$p" "$f"
    if [ "$f" -gt 0 ]; then
        failures+=("$name")
        grep -E '^not ok' "$log" | sed 's/^/    /'
        echo "    (full log: $log)"
    fi
}

if [ "$mode" = all ] || [ "$mode" = unit ]; then
    for t in "$build"/tests/test_*; do
        [ -x "$t" ] || continue
        name=unit/$(basename "$t")
        [ -n "$pattern" ] && [[ $name != *$pattern* ]] && continue
        log=$logdir/$(basename "$t").log
        CMOCKA_MESSAGE_OUTPUT=TAP timeout 120 "$t" >"$log" 2>&1
        tally "$name" "$log" $?
    done
fi

if [ "$mode" = all ] || [ "$mode" = integration ]; then
    # one set of throwaway certificates for the whole run
    export TS_CERTS=$logdir/certs
    certs/make-certs.sh "$TS_CERTS" >/dev/null || { echo "cannot make test certificates"; exit 1; }
    for t in tests/integration/[0-9]*.sh; do
        name=integration/$(basename "$t" .sh)
        [ -n "$pattern" ] && [[ $name != *$pattern* ]] && continue
        log=$logdir/$(basename "$t" .sh).log
        timeout 900 bash "$t" >"$log" 2>&1
        tally "$name" "$log" $?
    done
fi

if [ ${#failures[@]} -eq 0 ] && [ -z "${KEEP_LOGS:-}" ]; then rm -rf "$logdir"; fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

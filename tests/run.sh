#!/usr/bin/env bash
# Runs the unit tests (cmocka, TAP output) and the integration tests (numbered shell scripts
# that print TAP-style "ok - ..." / "not ok - ..." lines) and prints "N passed, N failed" last.
# usage: tests/run.sh unit|integration|all|ci BUILD_DIR [PATTERN]
set -u
mode=${1:-all}
build=${2:-build}
pattern=${3:-${TESTS:-}}
cd "$(dirname "$0")/.." || exit 2
top=$(pwd)
export TS_TOP=$top

passed=0
failed=0
failures=()
logdir=$(mktemp -d /tmp/tessera-tests.XXXXXX)

# Tally TAP lines from a log. A script cut by the timeout, one that fails without saying why,
# and one that ran no check at all each count as one more failure.
tally() { # name log exit_status [seconds]
    local name=$1 log=$2 rc=$3 p f secs=${4:+ $4 s}
    if [ ! -f "$log" ]; then # the log directory went away under the run: nothing proves a pass
        failed=$((failed + 1))
        failures+=("$name")
        printf '%-40s    0 passed    1 failed (no log: %s)\n' "$name" "$log"
        return
    fi
    p=$(grep -cE '^ok( |$)' "$log")
    f=$(grep -cE '^not ok( |$)' "$log")
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
        f=$((f + 1))
        echo "not ok - $name was killed by the timeout (status $rc)" >>"$log"
    elif [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        f=1
        echo "not ok - $name exited with status $rc" >>"$log"
    elif [ "$p" -eq 0 ] && [ "$f" -eq 0 ]; then
        f=1
        echo "not ok - $name printed no ok or not ok line" >>"$log"
    fi
    passed=$((passed + p))
    failed=$((failed + f))
    printf '%-40s %4d passed %4d failed%s\n' "$name" "$p" "$f" "$secs"
    if [ "$f" -gt 0 ]; then
        failures+=("$name")
        grep -E '^not ok' "$log" | sed 's/^/    /'
        echo "    (full log: $log)"
    fi
}

unit_tests() { # build-dir label-prefix
    local t name log
    for t in "$1"/tests/test_*; do
        [ -x "$t" ] || continue
        name=$2unit/$(basename "$t")
        [ -n "$pattern" ] && [[ $name != *$pattern* ]] && continue
        log=$logdir/${2//\//-}$(basename "$t").log
        CMOCKA_MESSAGE_OUTPUT=TAP timeout 300 "$t" >"$log" 2>&1
        tally "$name" "$log" $?
    done
}

integration_tests() { # build-dir label-prefix timeout-multiplier
    local t name log
    export TS_BUILD=$top/$1 TS_BIN=$top/$1/tessera TS_PROBE=$top/$1/tlsprobe TS_TIMEOUT_MULT=$3
    for t in tests/integration/[0-9]*.sh; do
        name=$2integration/$(basename "$t" .sh)
        [ -n "$pattern" ] && [[ $name != *$pattern* ]] && continue
        log=$logdir/${2//\//-}$(basename "$t" .sh).log
        local start=$SECONDS rc
        timeout -k 30 $((900 * $3)) bash "$t" >"$log" 2>&1
        rc=$?
        tally "$name" "$log" $rc $((SECONDS - start))
    done
}

# one set of throwaway certificates for the whole run
export TS_CERTS=$logdir/certs
certs/make-certs.sh "$TS_CERTS" >/dev/null || { echo "cannot make test certificates"; exit 1; }
# Sanitizer reports fail a test through the server's log (check_server_log) and exit status.
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1
export TSAN_OPTIONS="halt_on_error=0 second_deadlock_stack=1 exitcode=66"
mult=${TS_TIMEOUT_MULT:-1}

case $mode in
unit) unit_tests "$build" "" ;;
integration) integration_tests "$build" "" "$mult" ;;
all)
    unit_tests "$build" ""
    integration_tests "$build" "" "$mult"
    ;;
ci)
    # CI: the suite, the fuzzers for a minute each, then the suite again under
    # AddressSanitizer+UndefinedBehaviorSanitizer and under ThreadSanitizer.
    unit_tests "$build" ""
    integration_tests "$build" "" "$mult"
    log=$logdir/fuzz.log
    tests/fuzz/run.sh "${FUZZ_SECONDS:-60}" >"$log" 2>&1
    tally fuzz "$log" $?
    unit_tests build/asan "asan/"
    integration_tests build/asan "asan/" 3
    integration_tests build/tsan "tsan/" 4
    ;;
*) echo "usage: tests/run.sh unit|integration|all|ci BUILD_DIR [PATTERN]" >&2; exit 2 ;;
esac

if [ ${#failures[@]} -eq 0 ] && [ -z "${KEEP_LOGS:-}" ]; then rm -rf "$logdir"; fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

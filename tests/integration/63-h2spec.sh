#!/usr/bin/env bash
# HTTP/2 conformance: h2spec (../shared/conformance/h2spec, see its README) in strict mode, every
# case of its 147 must pass. The served page is larger than h2spec's flow-control cases need
# (6.9.2/2 is skipped for a small one). In CI a missing binary fails the test; elsewhere it is
# reported as a skip.
. "$(dirname "$0")/lib.sh"
make_site
H2SPEC=${H2SPEC:-$TS_TOP/../shared/conformance/h2spec}
if [ ! -x "$H2SPEC" ]; then
    if [ -n "${CI:-}" ]; then
        not_ok "h2spec is not at $H2SPEC (../shared/conformance/h2spec): the conformance suite did not run"
    else
        ok "# SKIP h2spec is not at $H2SPEC (../shared/conformance/h2spec)"
    fi
    exit 0
fi
head -c 60000 /dev/urandom | base64 >"$T/www/index.html"
WORKERS=1 start_server || exit 1
timeout $((300 * MULT)) "$H2SPEC" -S -t -k -h 127.0.0.1 -p "$PORT" -o $((5 * MULT)) >"$T/h2spec.out" 2>&1
rc=$?
SUMMARY=$(grep -E '^[0-9]+ tests, ' "$T/h2spec.out" | tail -1)
expect "h2spec --strict: every case passes (exit $rc)" "$SUMMARY" "147 tests, 147 passed, 0 skipped, 0 failed"
if [ "$SUMMARY" != "147 tests, 147 passed, 0 skipped, 0 failed" ]; then
    grep -B1 -A5 '×' "$T/h2spec.out" | head -60 | sed 's/^/#   /'
fi
# the server is still well after every hostile case
expect "the server still answers" "$(tcurl --http2 "$BASE/hello.txt")" hello
# h2spec's errors are the client's: logged at info, never as an error
stop_server
check_server_log

#!/usr/bin/env bash
# TLS posture as testssl.sh sees it: no protocol below TLS 1.2 and nothing vulnerable or
# potentially vulnerable. (Certificate checks are left out: the test CA is not trusted.)
. "$(dirname "$0")/lib.sh"
case $TS_BUILD in
*asan* | *tsan*) ok "testssl.sh runs against the release build only # SKIP"; exit 0 ;;
esac
make_site
TOP_EXTRA='"hsts": "max-age=31536000",' ACCESS_LOG=off start_server || exit 1
timeout $((600 * MULT)) testssl --quiet --color 0 --warnings off --ip 127.0.0.1 \
    --protocols --vulnerable --server-defaults --jsonfile "$T/testssl.json" "127.0.0.1:$PORT" >"$T/testssl.out" 2>&1
expect "testssl.sh completed" "$(jq 'length > 20' "$T/testssl.json")" true
finding() { jq -r --arg id "$1" '.[] | select(.id == $id) | .finding' "$T/testssl.json"; }
for p in SSLv2 SSLv3 TLS1 TLS1_1; do
    expect_match "testssl: $p not offered" "$(finding $p)" "^not offered"
done
expect_match "testssl: TLS 1.2 offered" "$(finding TLS1_2)" "^offered"
expect_match "testssl: TLS 1.3 offered" "$(finding TLS1_3)" "^offered"
V=$(jq -r '.[] | select(.finding | test("VULNERABLE|potentially")) | "\(.id): \(.finding)"' "$T/testssl.json")
expect "testssl: nothing VULNERABLE or potentially vulnerable" "$V" ""
BAD=$(jq -r '.[] | select(.severity == "HIGH" or .severity == "CRITICAL" or .severity == "MEDIUM")
    | select(.id | test("^cert|^DNS_CAA|^intermediate") | not) | "\(.id) \(.severity): \(.finding)"' "$T/testssl.json")
expect "testssl: no MEDIUM, HIGH or CRITICAL finding outside the (test) certificate" "$BAD" ""
expect_match "testssl: secure renegotiation, no client renegotiation" "$(finding secure_client_renego)" "not vulnerable"
stop_server
expect "server exits 0" "$?" 0
check_server_log

#!/usr/bin/env bash
# ALPN: the server picks its first protocol the client also offers (h2 when the build has
# HTTP/2 and "http2" is on, then http/1.1, http/1.0); a client without ALPN speaks HTTP/1.1;
# a client that offers ALPN but none of ours is refused at the handshake with the fatal
# no_application_protocol alert (a TLS connection meant for another service, as in the ALPACA
# cross-protocol attacks, is not served as HTTP), counted in
# tls.handshakes.failure_reasons.no_application_protocol.
. "$(dirname "$0")/lib.sh"
make_site
status_json() { tcurl -s "$BASE/status"; }
fails() { status_json | jq -r '.tls.handshakes.failed, .tls.handshakes.failure_reasons.no_application_protocol' | tr '\n' ' '; }
# s_client with a request: prints the session summary, the alerts and the response
sclient() {
    printf 'GET /hello.txt HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' |
        timeout $((10 * MULT)) openssl s_client -ign_eof -connect "127.0.0.1:$PORT" -servername localhost \
            -CAfile "$CERTS/ca.crt" "$@" 2>&1
}
selected() { sed -n 's/^ALPN protocol: //p' <<<"$1" | head -1; }
ALERT='alert no application protocol'

# What this build offers with "http2": true; h2 appears there once the codec is built in.
VER=$(oneshot "$TS_BIN" --version)
OFFER=$(sed -n 's/^alpn: //p' <<<"$VER")
expect_match "--version lists the ALPN protocols offered" "$OFFER" "^(h2,)?http/1\.1,http/1\.0$"
case ",$OFFER," in *,h2,*) H2=1 ;; *) H2=0 ;; esac
echo "# ALPN offered by this build: $OFFER (h2: $H2)"

start_server || exit 1
F0=$(fails)
for v in -tls1_3 -tls1_2; do
    R=$(sclient -alpn http/1.1 $v)
    expect "$v: -alpn http/1.1 selects http/1.1" "$(selected "$R")" "http/1.1"
    expect_match "...and the request is served" "$R" "^hello"
    R=$(sclient -alpn http/1.0 $v)
    expect "$v: -alpn http/1.0 selects http/1.0" "$(selected "$R")" "http/1.0"
    expect_match "...and the request is served" "$R" "^hello"
    R=$(sclient -alpn h2,http/1.1 $v)
    if [ "$H2" = 1 ]; then
        expect "$v: -alpn h2,http/1.1 selects h2" "$(selected "$R")" "h2"
    else
        ok "$v: -alpn h2,http/1.1 selects h2 # SKIP no HTTP/2 in this build (TS_HAVE_H2 0)"
        expect "$v: -alpn h2,http/1.1 selects http/1.1 while there is no HTTP/2" "$(selected "$R")" "http/1.1"
        expect_match "...and the request is served" "$R" "^hello"
    fi
    # our preference, not the client's order
    R=$(sclient -alpn http/1.0,http/1.1 $v)
    expect "$v: -alpn http/1.0,http/1.1 selects http/1.1 (the server's order)" "$(selected "$R")" "http/1.1"
    R=$(sclient $v)
    expect_match "$v: no ALPN: none negotiated" "$R" "No ALPN negotiated"
    expect_match "...and HTTP/1.1 is served" "$R" "^hello"
done
if [ "$H2" = 1 ]; then WANT="2 200"; else WANT="1.1 200"; fi
expect "curl (offers h2,http/1.1) gets HTTP/$WANT" "$(tcurl --http2 -o /dev/null -w '%{http_version} %{http_code}' "$BASE/hello.txt")" "$WANT"
expect "curl --http1.1 (offers http/1.1)" "$(tcurl --http1.1 -o /dev/null -w '%{http_version} %{http_code}' "$BASE/hello.txt")" "1.1 200"
R=$(tcurl --http1.0 -v -o /dev/null -w '%{http_code}\n' "$BASE/hello.txt" 2>&1)
expect_match "curl --http1.0 offers http/1.0, which is accepted" "$R" "ALPN: server accepted http/1.0"
expect_match "...and served" "$R" "^200$"
expect "no handshake failed so far" "$(fails)" "$F0"

# Refused: none of ours. Names are compared whole and case-sensitively.
N=0
for alpn in imap ftp,smtp,pop3 http/1.1x http/1 HTTP/1.1 h2c spdy/3.1 h3; do
    for v in -tls1_3 -tls1_2; do
        R=$(sclient -alpn "$alpn" $v)
        N=$((N + 1))
        expect_match "$v: -alpn $alpn: fatal no_application_protocol alert" "$R" "$ALERT"
        expect_no_match "...and nothing is served" "$R" "^hello|^HTTP/"
    done
done
if [ "$H2" = 0 ]; then
    R=$(sclient -alpn h2)
    N=$((N + 1))
    expect_match "-alpn h2 alone is refused while there is no HTTP/2" "$R" "$ALERT"
fi
# a resumed session does not carry the protocol: ALPN is checked again
R=$(sclient -alpn http/1.1 -tls1_3 -sess_out "$T/sess.pem")
expect "a session saved under http/1.1" "$(selected "$R")" "http/1.1"
R=$(sclient -alpn imap -tls1_3 -sess_in "$T/sess.pem")
N=$((N + 1))
expect_match "...resumed offering imap is refused" "$R" "$ALERT"
read -r F0_FAILED F0_NOAP <<<"$F0"
expect "every refusal counted as a failed handshake with reason no_application_protocol" "$(fails)" \
    "$((F0_FAILED + N)) $((F0_NOAP + N)) "
expect_match "/metrics has the reason" "$(tcurl -s "$BASE/metrics")" \
    "^tessera_tls_handshake_failures_total\{reason=\"no_application_protocol\"\} $((F0_NOAP + N))$"
expect "the server still serves" "$(tcurl -o /dev/null -w '%{http_code}' "$BASE/hello.txt")" 200
stop_server
check_server_log

# "http2": false never offers h2, whatever the build has
TOP_EXTRA='"http2": false,' start_server || exit 1
read -r F0_FAILED F0_NOAP <<<"$(fails)"
R=$(sclient -alpn h2,http/1.1)
expect "http2 false: -alpn h2,http/1.1 selects http/1.1" "$(selected "$R")" "http/1.1"
R=$(sclient -alpn h2)
expect_match "http2 false: -alpn h2 alone is refused" "$R" "$ALERT"
expect "...counted" "$(fails)" "$((F0_FAILED + 1)) $((F0_NOAP + 1)) "
stop_server
check_server_log
TOP_EXTRA='"http2": "yes",' write_config
OUT=$(oneshot "$TS_BIN" --config "$T/tessera.json" --check-config)
expect_match "http2 must be a boolean" "$OUT" "http2"
check_server_log
exit "$FAILS"

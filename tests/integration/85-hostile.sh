#!/usr/bin/env bash
# Hostile and broken input: every malformed request gets 400 (or 413/414/431) and the
# connection closes; plain HTTP gets a plain-text 400; random bytes and truncated ClientHellos
# just close. Never a crash, never a hang.
. "$(dirname "$0")/lib.sh"
make_site
TIMEOUTS='"shutdown_s": 1, "handshake_s": 2, "request_header_s": 3' \
    LIMITS='"max_header_bytes": 2048, "max_uri_bytes": 512' start_server || exit 1

# bad 'NAME' 'REQUEST BYTES' STATUS: the answer is STATUS with Connection: close, and the
# server closes the connection (raw_request returns only when it does).
bad() {
    local start ms R
    start=$(date +%s%N)
    R=$(raw_request "$2")
    ms=$((($(date +%s%N) - start) / 1000000))
    if printf '%s' "$R" | head -1 | grep -q "^HTTP/1.1 $3 " && printf '%s' "$R" | grep -q '^Connection: close' &&
        [ "$ms" -lt $((4000 * MULT)) ]; then
        ok "$1 -> $3 and close (${ms} ms)"
    else
        not_ok "$1: wanted $3 and close, got '$(printf '%s' "$R" | head -1 | tr -d '\r')' after ${ms} ms"
    fi
}
bad "malformed request line" 'GARBAGE\r\n\r\n' 400
bad "request line without version" 'GET /\r\nHost: a\r\n\r\n' 400
bad "an unknown (lower-case) method" 'get / HTTP/1.1\r\nHost: a\r\n\r\n' 501
bad "bad HTTP version" 'GET / HTTP/1.x\r\nHost: a\r\n\r\n' 400
bad "missing Host in HTTP/1.1" 'GET / HTTP/1.1\r\nUser-Agent: x\r\n\r\n' 400
bad "two Host headers" 'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n' 400
bad "Content-Length with Transfer-Encoding" 'GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\nabc' 400
bad "duplicate Content-Length" 'GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx' 400
bad "invalid Content-Length" 'GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1x\r\n\r\n' 400
bad "negative Content-Length" 'GET / HTTP/1.1\r\nHost: a\r\nContent-Length: -5\r\n\r\n' 400
bad "obsolete line folding" 'GET / HTTP/1.1\r\nHost: a\r\nX-Folded: one\r\n two\r\n\r\n' 400
bad "bare LF line ends" 'GET / HTTP/1.1\nHost: a\n\n' 400
bad "bare CR in a header" 'GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n' 400
bad "space before the colon" 'GET / HTTP/1.1\r\nHost : a\r\n\r\n' 400
bad "control character in the target" 'GET /hello\x01.txt HTTP/1.1\r\nHost: a\r\n\r\n' 400
bad "DEL in the target" 'GET /hello\x7f.txt HTTP/1.1\r\nHost: a\r\n\r\n' 400
bad "NUL byte in the target" 'GET /hello\x00.txt HTTP/1.1\r\nHost: a\r\n\r\n' 400
bad "encoded NUL in the target" 'GET /hello%00.txt HTTP/1.1\r\nHost: a\r\n\r\n' 400
bad "NUL in a header value" 'GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n' 400
bad "target too long" "GET /$(head -c 600 /dev/zero | tr '\0' a) HTTP/1.1\r\nHost: a\r\n\r\n" 414
bad "header section too large" "GET / HTTP/1.1\r\nHost: a\r\nX-Big: $(head -c 3000 /dev/zero | tr '\0' b)\r\n\r\n" 431
bad "a body on GET" 'GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello' 413
bad "a huge announced body" 'GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999\r\n\r\n' 413
bad "a chunked body on GET" 'GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n' 413
bad "HTTP/2 preface over TLS" 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n' 400
bad "absurd version (any major of 2 or more is 505)" 'GET / HTTP/9.9\r\nHost: a\r\n\r\n' 505
bad "malformed version" 'GET / HTTP/1.x\r\nHost: a\r\n\r\n' 400
bad "HTTP/2.1" 'GET / HTTP/2.1\r\nHost: a\r\n\r\n' 505
bad "HTTP/3.0" 'GET / HTTP/3.0\r\nHost: a\r\n\r\n' 505

# plain HTTP to the TLS port: a short plain-text 400 that says to use https
R=$(curl -sS --max-time 5 -D - "http://127.0.0.1:$PORT/" 2>&1)
expect_match "plain HTTP gets a plain-text 400" "$R" "^HTTP/1.1 400 Bad Request"
expect_match "...saying to use https" "$R" "use https://"
# random bytes and truncated ClientHellos: the connection just closes
rawtcp() { # bytes -> what the server sent back (until it closed), bounded
    timeout $((8 * MULT)) bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"; printf "%b" "$2" >&3; cat <&3' _ "$PORT" "$1" | od -An -c | head -3
}
start=$(date +%s)
expect "random binary bytes: closed without an HTTP answer" "$(rawtcp '\x01\x02\x03\xff\xfe garbage' | grep -c HTTP)" 0
expect "a TLS record that is not a ClientHello: closed" "$(rawtcp '\x16\x03\x01\x00\x05hello' | grep -c HTTP)" 0
expect "a truncated ClientHello: closed at handshake_s" "$(rawtcp '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03' | grep -c HTTP)" 0
el=$(($(date +%s) - start))
if [ "$el" -le $((7 * MULT)) ]; then ok "those three closed within ${el} s"; else not_ok "took ${el} s"; fi
for i in 1 2 3; do probe vanish --stage handshake >/dev/null; done

# the server is still there and serving
expect "still serving after all of it" "$(tcurl "$BASE/hello.txt")" hello
S=$(tcurl "$BASE/status")
expect "no request is left in flight" "$(printf '%s' "$S" | jq .requests.in_flight)" 1
expect "status counted the 4xx answers" "$(printf '%s' "$S" | jq '.requests.status["4xx"]')" $(grep -c '^bad ".*4[0-9][0-9]$' "$0")
expect_match "failure reasons counted" "$(printf '%s' "$S" | jq -c .tls.handshakes.failure_reasons)" '"http_on_tls_port":1,.*"bad_message":[1-9]'
stop_server
expect "server exits 0" "$?" 0
check_server_log

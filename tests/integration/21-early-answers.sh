#!/usr/bin/env bash
# Requests with a body the server never reads (it takes none): whatever answers them early
# (421, 405, 413, the http_redirect 301, 403/404/304/OPTIONS/status paths), the client gets one
# response and the connection closes, so the unread body is never parsed as a request of its
# own (request smuggling through a front end that reuses connections). Both body framings
# (Content-Length, chunked), on a connection of the default site and of a named site; HTTP/2
# streams with a body are answered once and the connection goes on. Also: a higher HTTP/1.x
# minor version is served as 1.1 (RFC 9110 section 6.2), and requests refused while parsing
# are logged with the version the client sent, or "-".
. "$(dirname "$0")/lib.sh"
make_site
mkdir -p "$T/www/private" "$T/b"
printf 'private\n' >"$T/www/private/p.txt"
printf 'b home\n' >"$T/b/index.html"

# a named site, b.test, with a certificate of the test CA
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/b.key" 2>/dev/null
openssl req -new -key "$T/b.key" -subj /CN=b.test -out "$T/b.csr" 2>/dev/null
printf 'subjectAltName=DNS:b.test\nextendedKeyUsage=serverAuth\n' >"$T/b.ext"
openssl x509 -req -in "$T/b.csr" -CA "$CERTS/ca.crt" -CAkey "$CERTS/ca.key" -set_serial 7 \
    -days 2 -extfile "$T/b.ext" -out "$T/b.crt" 2>/dev/null
check "the named site's certificate was made" test -s "$T/b.crt"

PLAIN=$(pick_port)
TOP_EXTRA="\"http_redirect\": { \"listen\": \"127.0.0.1:$PLAIN\" },
    \"sites\": [ { \"server_names\": [\"b.test\"], \"root\": \"$T/b\",
                   \"certificates\": [ { \"certificate\": \"$T/b.crt\", \"key\": \"$T/b.key\" } ] } ],
    \"locations\": [ { \"path\": \"/private/\", \"require_client_cert\": true } ],
    \"status\": { \"path\": \"/status\", \"allow\": [\"127.0.0.1\"] },"
TLS_EXTRA=', "client_auth": "optional", "client_ca": "'"$CERTS"'/ca.crt"'
LOG_EXTRA=', "format": "json"'
start_server || exit 1

# the body every request carries: a request of its own, which must never be answered
SMUGGLED=$'GET /hello.txt?smuggled HTTP/1.1\r\nHost: localhost\r\n\r\n'
chunked() { printf '%x\r\n%s\r\n0\r\n\r\n' "${#SMUGGLED}" "$SMUGGLED"; }

# send SNI FRAMING 'REQUEST LINE AND HEADERS': the request, its body, and a second request
# after it (which a kept connection would answer); prints everything the server sent
send() {
    local sni=$1 framing=$2 head=$3 body te
    if [ "$framing" = length ]; then
        te="Content-Length: ${#SMUGGLED}"
        body=$SMUGGLED
    else
        te="Transfer-Encoding: chunked"
        body=$(chunked)
    fi
    printf '%s\r\n%s\r\n\r\n%s' "$head" "$te" "$body" |
        timeout $((15 * MULT)) openssl s_client -quiet -ign_eof -connect "127.0.0.1:$PORT" \
            -servername "$sni" -CAfile "$CERTS/ca.crt" 2>/dev/null
}
# plain FRAMING 'REQUEST': the same on the http_redirect listener
send_plain() {
    local framing=$1 head=$2 body te
    if [ "$framing" = length ]; then te="Content-Length: ${#SMUGGLED}" body=$SMUGGLED
    else te="Transfer-Encoding: chunked" body=$(chunked); fi
    printf '%s\r\n%s\r\n\r\n%s' "$head" "$te" "$body" | timeout $((15 * MULT)) \
        python3 -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(sys.stdin.buffer.read())
s.settimeout(10)
out = b""
while True:
    d = s.recv(65536)
    if not d: break
    out += d
sys.stdout.buffer.write(out)' "$PLAIN"
}
smuggled_logged() { grep -c 'smuggled' "$T/access.log"; }

# one response, with its status, "Connection: close", and the body never answered
one_answer() { # DESCRIPTION RESPONSE STATUS
    local n
    n=$(printf '%s' "$2" | grep -c '^HTTP/1\.1 ')
    expect "$1: one response" "$n" 1
    expect "$1: $3" "$(printf '%s' "$2" | head -1 | cut -d' ' -f2)" "$3"
    expect_match "$1: Connection: close" "$(printf '%s' "$2" | tr -d '\r')" '^Connection: close$'
}

for framing in length chunked; do
    for site in localhost b.test; do
        other=b.test
        [ "$site" = b.test ] && other=localhost
        # STATUS|REQUEST LINE|HOST (SELF: the connection's site)|ANOTHER HEADER
        while IFS='|' read -r want line host extra; do
            line=${line//OTHER/$other}
            host=${host//OTHER/$other}
            host=${host//SELF/$site}
            head="$line"$'\r\n'"Host: $host"
            [ -n "$extra" ] && head+=$'\r\n'"$extra"
            R=$(send "$site" "$framing" "$head")
            one_answer "$framing body, $site connection, $line, Host $host${extra:+, $extra}" "$R" "$want"
        done <<EOF
421|POST / HTTP/1.1|OTHER|
421|GET /hello.txt HTTP/1.1|OTHER|
421|POST https://OTHER/ HTTP/1.1|SELF|
405|POST /hello.txt HTTP/1.1|SELF|
405|DELETE /hello.txt HTTP/1.1|SELF|
413|GET /hello.txt HTTP/1.1|SELF|
413|HEAD /hello.txt HTTP/1.1|SELF|
413|OPTIONS / HTTP/1.1|SELF|
413|GET /nope HTTP/1.1|SELF|
413|GET /private/p.txt HTTP/1.1|SELF|
413|GET /status HTTP/1.1|SELF|
413|GET /.hidden HTTP/1.1|SELF|
413|GET /dir HTTP/1.1|SELF|
413|GET /hello.txt HTTP/1.1|SELF|If-None-Match: *
EOF
    done
    R=$(send_plain "$framing" $'POST /x HTTP/1.1\r\nHost: localhost')
    one_answer "$framing body on the http_redirect listener" "$R" 301
done
wait_until 5 test "$(grep -c . "$T/access.log")" -ge 58
expect "the access log has one line a request" "$(grep -c . "$T/access.log")" 58
expect "no smuggled request was ever answered" "$(smuggled_logged)" 0

### HTTP/2: a stream with a body is answered once; the connection serves the next stream
for h in b.test localhost; do
    # --next starts the options afresh: the connection is reused when they match
    h2=(--http2 --max-time $((20 * MULT)) --cacert "$CERTS/ca.crt" --resolve "localhost:$PORT:127.0.0.1"
        -o /dev/null -w '%{http_code} %{num_connects}\n')
    R=$(curl -sS "${h2[@]}" -H "Host: $h" --data-binary "$SMUGGLED" "$BASE/hello.txt?h2body" \
        --next "${h2[@]}" "$BASE/hello.txt?h2next")
    want=421
    [ "$h" = localhost ] && want=405
    expect "HTTP/2: a POST with a body, Host $h: $want, then the next stream on the same connection" \
        "$(echo $R)" "$want 1 200 0"
done
wait_until 5 test "$(grep -c 'h2next' "$T/access.log")" -ge 2
expect "HTTP/2: no smuggled request answered" "$(smuggled_logged)" 0

### a higher HTTP/1 minor version is handled as 1.1 (and logged as sent)
R=$(raw_request 'GET /hello.txt?v12 HTTP/1.2\r\nHost: localhost\r\n\r\nGET /hello.txt?after12 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n')
expect "HTTP/1.2: two responses on one connection (kept alive)" "$(printf '%s' "$R" | grep -c '^HTTP/1.1 200 ')" 2
wait_until 5 grep -q 'after12' "$T/access.log"
expect_match "...logged with the version sent" "$(grep 'v12' "$T/access.log")" '"protocol":"HTTP/1\.2","status":200'

### requests refused while parsing are logged with the version sent, or "-"
raw_request 'GET /bad\x01target HTTP/1.1\r\nHost: localhost\r\n\r\n' >/dev/null
raw_request 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n' >/dev/null
raw_request 'GET /badheader HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n' >/dev/null
wait_until 5 test "$(grep -cE '"status":(400|505)' "$T/access.log")" -ge 3
L=$(grep -E '"status":(400|505)' "$T/access.log")
expect_match "a target refused at a byte: no version yet, \"-\"" "$L" '"protocol":"-","status":400'
expect_match "PRI * HTTP/2.0 on HTTP/1.1: HTTP/2.0" "$L" '"method":"PRI","target":"\*","protocol":"HTTP/2\.0","status":400'
expect_match "a bad header: the version sent" "$L" '"target":"/badheader","protocol":"HTTP/1\.1","status":400'
expect_no_match "no refused request logged as HTTP/1.0" "$L" 'HTTP/1\.0'

stop_server
check_server_log

#!/usr/bin/env bash
# Whatever bytes a client sends in the request target, User-Agent or Referer, every line of the
# JSON access log parses as JSON (invalid UTF-8 and controls escaped, valid UTF-8 kept), and
# every line of the combined log is one line of printable ASCII.
. "$(dirname "$0")/lib.sh"
make_site
printf 'cafe\n' >"$T/www/café.txt"
WORKERS=1
LONG=$(printf '\\xff%.0s' $(seq 1 3000))

# Each request on its own connection, raw bytes over TLS (nothing percent-encodes them).
send_all() {
    local r
    for r in \
        'GET /\xff\xfe\xc0\xaf?x=\xed\xa0\x80\xf4\x90\x80\x80 HTTP/1.1\r\nHost: localhost\r\nUser-Agent: \xc3\x28\x80ua"\\\r\nReferer: \xe2\x82\tref\xf8\r\nConnection: close\r\n\r\n' \
        'GET /caf\xc3\xa9.txt HTTP/1.1\r\nHost: localhost\r\nUser-Agent: \xc3\xbc \xe2\x82\xac \xf0\x9d\x84\x9e\r\nConnection: close\r\n\r\n' \
        'GET /a\x01b HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' \
        'GET /a\x1b[2Jb HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' \
        'GET /nel HTTP/1.1\r\nHost: localhost\r\nUser-Agent: a\xc2\x85b\xe2\x80\xa8c\r\nConnection: close\r\n\r\n' \
        "GET /long HTTP/1.1\r\nHost: localhost\r\nUser-Agent: $LONG\r\nReferer: $LONG\r\nConnection: close\r\n\r\n" \
        'GET /del HTTP/1.1\r\nHost: localhost\r\nUser-Agent: a\x7fb\x1b[2J\r\nConnection: close\r\n\r\n' \
        'GET /hello.txt HTTP/1.1\r\nHost: localhost\r\nUser-Agent: \xff\r\nConnection: close\r\n\r\n'; do
        raw_request "$r" >/dev/null
    done
}
NREQ=8
wait_lines() {
    for _ in $(seq 1 $((50 * MULT))); do
        [ "$(wc -l <"$T/access.log" 2>/dev/null)" -ge "$NREQ" ] && break
        sleep 0.1
    done
}

### JSON
LOG_EXTRA=', "format": "json"' LIMITS='"max_header_bytes": 65536' start_server || exit 1
send_all
wait_lines
stop_server
expect "JSON: one line per request" "$(wc -l <"$T/access.log")" "$NREQ"
check "JSON: every line parses" python3 -c 'import json,sys; [json.loads(l) for l in sys.stdin]' <"$T/access.log"
# what the lines decode to (an invalid byte b reads as U+00bb)
J=$(python3 -c '
import json, sys
for l in open(sys.argv[1], encoding="utf-8"):
    d = json.loads(l)
    print(ascii([d["target"], d["user_agent"], d["referer"], d["status"]]))
' "$T/access.log" 2>&1)
expect_match "JSON: invalid UTF-8 in the target, escaped byte by byte" "$J" \
    "^\['/\\\\xff\\\\xfe\\\\xc0\\\\xaf\?x=\\\\xed\\\\xa0\\\\x80\\\\xf4\\\\x90\\\\x80\\\\x80', "
expect_match "JSON: ...and in User-Agent (with a quote and a backslash) and Referer (with a tab)" "$J" \
    "'\\\\xc3\(\\\\x80ua\"\\\\\\\\', '\\\\xe2\\\\x82\\\\tref\\\\xf8', 404\]"
expect_match "JSON: valid UTF-8 kept as it is" "$J" \
    "^\['/caf\\\\xe9\.txt', '\\\\xfc \\\\u20ac \\\\U0001d11e', '', 200\]"
expect_match "JSON: C1 controls and U+2028 escaped" "$(grep '/nel' "$T/access.log")" \
    '"user_agent":"a\\u0085b\\u2028c"'
expect_match "JSON: long fields are cut, the line still whole" "$(grep '/long' "$T/access.log")" \
    '"user_agent":"(\\u00ff)+","duration_us":[0-9]+\}$'
expect_no_match "JSON: no raw control byte on any line" "$(LC_ALL=C tr -d '\n' <"$T/access.log" | LC_ALL=C tr -d ' -~\200-\377' | od -An -c)" "."
check_server_log

### combined
rm -f "$T/access.log"
LIMITS='"max_header_bytes": 65536' start_server || exit 1
send_all
wait_lines
stop_server
expect "combined: one line per request" "$(wc -l <"$T/access.log")" "$NREQ"
expect "combined: nothing but printable ASCII" "$(LC_ALL=C grep -c '[^ -~]' "$T/access.log")" 0
expect "combined: every line has its quoted fields" \
    "$(LC_ALL=C grep -cE '^127\.0\.0\.1 - - \[[^]]+\] "([^"\\]|\\.)*" [0-9]{3} [0-9]+ "([^"\\]|\\.)*" "([^"\\]|\\.)*"$' "$T/access.log")" "$NREQ"
expect_match "combined: bytes >= 0x7f as \\xHH" "$(cat "$T/access.log")" '"GET /caf\\xc3\\xa9\.txt HTTP/1\.1" 200 5 "-" "\\xc3\\xbc \\xe2\\x82\\xac'
check_server_log

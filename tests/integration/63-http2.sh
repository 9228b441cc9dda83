#!/usr/bin/env bash
# HTTP/2 (ALPN h2, libnghttp2): the static features over h2, many streams on one connection,
# the access log, the timeouts, a graceful end, and the answers to hostile clients.
. "$(dirname "$0")/lib.sh"
make_site
W=$T/www
head -c 300000 /dev/urandom >"$W/big.bin"
head -c 10485760 /dev/zero >"$W/huge.bin"
printf 'plain text\n' >"$W/gz.txt"
gzip -k "$W/gz.txt"
mkdir -p "$W/list" "$W/private"
printf 'a\n' >"$W/list/a.txt"
printf 'secret\n' >"$W/private/s.txt"
H2HOSTILE() { timeout $((60 * MULT)) /usr/bin/python3 "$(dirname "$0")/../tools/h2hostile.py" "$@" --port "$PORT" --cafile "$CERTS/ca.crt"; }
h2c() { tcurl --http2 "$@"; }
status_json() { tcurl -s "$BASE/status"; }
sj() { status_json | jq -r "$1"; }

ACCESS_LOG=$T/access.log start_server || exit 1
expect "GET over h2" "$(h2c -o /dev/null -w '%{http_version} %{http_code} %{size_download}' "$BASE/hello.txt")" "2 200 6"
R=$(h2c -sS -D - -o "$T/b" "$BASE/big.bin")
expect_match "...a 300 KB file: 200 with content-length" "$R" "content-length: 300000"
check "...and its bytes are the file's" cmp -s "$T/b" "$W/big.bin"
expect_no_match "...no connection header" "$R" "^connection:"
expect_match "...date and server" "$R" "^server: tessera"
R=$(h2c -sS -I "$BASE/hello.txt")
expect_match "HEAD: 200 with content-length 6" "$R" "content-length: 6"
expect "HEAD: no body" "$(h2c -sS --head -o /dev/null -w '%{size_download}' "$BASE/hello.txt")" "0"
expect "404" "$(h2c -o /dev/null -w '%{http_version} %{http_code}' "$BASE/nope")" "2 404"
ETAG=$(h2c -sS -D - -o /dev/null "$BASE/hello.txt" | sed -n 's/^etag: //p' | tr -d '\r')
expect "304 with If-None-Match" "$(h2c -o /dev/null -w '%{http_code} %{size_download}' -H "If-None-Match: $ETAG" "$BASE/hello.txt")" "304 0"
expect "Range: 206" "$(h2c -sS -w ' %{http_code}' -r 1-3 "$BASE/hello.txt")" "ell 206"
R=$(h2c -sS -D - -r 0-1,3-4 "$BASE/hello.txt")
expect_match "multipart/byteranges" "$R" "content-type: multipart/byteranges"
expect_match "...with both parts" "$R" "^lo"
expect "precompressed gzip" "$(h2c -sS -H 'Accept-Encoding: gzip' -D - -o /dev/null "$BASE/gz.txt" | sed -n 's/^content-encoding: //p' | tr -d '\r')" "gzip"
expect_match "autoindex" "$(h2c -sS "$BASE/list/")" "a.txt"
expect "/status over h2" "$(h2c -sS "$BASE/status" | jq -r '.server // empty | type' 2>/dev/null || echo x)" "object"
expect "OPTIONS" "$(h2c -o /dev/null -w '%{http_code}' -X OPTIONS "$BASE/hello.txt")" "204"
expect "POST with a body: 405 (not read)" "$(h2c -o /dev/null -w '%{http_code}' -d 'x=1' "$BASE/hello.txt")" "405"
R=$(h2c -o /dev/null -w '%{http_code}\n' -H "X-Big: $(head -c 10000 /dev/zero | tr '\0' a)" "$BASE/hello.txt" 2>&1)
expect_match "a header list over max_header_bytes: 431 or reset" "$R" "431|RST|stream"
# many streams on one connection
R=$(timeout $((60 * MULT)) nghttp -n -s -m 100 --cert= "$BASE/hello.txt" 2>&1 | tail -5)
expect_match "nghttp -m 100: 100 requests on one connection" "$R" "100 req|requests"
R=$(timeout $((120 * MULT)) h2load -n 2000 -c 4 -m 10 "$BASE/hello.txt" 2>&1)
expect_match "h2load -n 2000 -c 4 -m 10: all succeeded" "$R" "2000 succeeded, 0 failed"
expect_match "access log: HTTP/2.0" "$(tail -3 "$T/access.log")" '"GET /hello.txt HTTP/2.0" 200 6'
stop_server
check_server_log
exit "$FAILS"

#!/usr/bin/env bash
# HTTP/1.1 over TLS: methods, status codes, headers, MIME types, keep-alive, pipelining,
# HTTP/1.0, directory handling and bad requests.
. "$(dirname "$0")/lib.sh"
make_site
for e in html css js json svg png jpg gif webp ico txt pdf wasm woff2; do printf 'x' >"$T/www/m.$e"; done
start_server || exit 1

# headers of GET /
H=$(tcurl -D - -o "$T/body" "$BASE/")
expect_match "GET / is 200" "$H" "^HTTP/1.1 200 OK"
expect "GET / serves index.html" "$(cat "$T/body")" "$(cat "$T/www/index.html")"
expect_match "Date header (IMF-fixdate)" "$H" "Date: [A-Z][a-z]{2}, [0-9]{2} [A-Z][a-z]{2} [0-9]{4} [0-9:]{8} GMT"
expect_match "Server header" "$H" "Server: tessera"
expect_match "Content-Type with charset" "$H" "Content-Type: text/html; charset=utf-8"
expect_match "Content-Length" "$H" "Content-Length: $(stat -c %s "$T/www/index.html")"
expect_match "Last-Modified" "$H" "Last-Modified: [A-Z][a-z]{2}, [0-9]{2} [A-Z][a-z]{2} [0-9]{4} [0-9:]{8} GMT"

# HEAD: same headers, no body
H=$(tcurl -I "$BASE/hello.txt")
expect_match "HEAD is 200 with the GET Content-Length" "$H" "Content-Length: 6"
R=$(raw_request 'HEAD /hello.txt HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')
expect "HEAD has no body" "$(printf '%s' "$R" | sed '1,/^\r$/d' | wc -c)" 0

# MIME types
declare -A mime=([html]="text/html; charset=utf-8" [css]="text/css; charset=utf-8"
    [js]="text/javascript; charset=utf-8" [json]="application/json" [svg]="image/svg+xml"
    [png]="image/png" [jpg]="image/jpeg" [gif]="image/gif" [webp]="image/webp" [ico]="image/x-icon"
    [txt]="text/plain; charset=utf-8" [pdf]="application/pdf" [wasm]="application/wasm" [woff2]="font/woff2")
for e in "${!mime[@]}"; do
    expect "MIME type of .$e" "$(tcurl -o /dev/null -w '%{content_type}' "$BASE/m.$e")" "${mime[$e]}"
done
printf 'x' >"$T/www/m.unknownext"
expect "unknown extension is application/octet-stream" "$(tcurl -o /dev/null -w '%{content_type}' "$BASE/m.unknownext")" "application/octet-stream"

# status codes
expect "missing file is 404" "$(tcurl -o /dev/null -w '%{http_code}' "$BASE/nope.html")" 404
expect "directory without slash is 301" "$(tcurl -o /dev/null -w '%{http_code}' "$BASE/dir")" 301
expect "301 Location adds the slash and keeps the query" "$(tcurl -o /dev/null -w '%{redirect_url}' "$BASE/dir?a=1&b=2")" "$BASE/dir/?a=1&b=2"
expect "directory with slash serves its index.html" "$(tcurl "$BASE/dir/")" "dir index"
expect "directory without index is 403" "$(tcurl -o /dev/null -w '%{http_code}' "$BASE/sub/")" 403
expect "nested file" "$(tcurl "$BASE/sub/deeper/file.txt")" "deep"
expect "empty file is 200 with no body" "$(tcurl -o /dev/null -w '%{http_code} %{size_download}' "$BASE/empty.txt")" "200 0"
expect "query string is ignored for files" "$(tcurl "$BASE/hello.txt?x=1")" "hello"
expect "percent-encoded name" "$(cp "$T/www/hello.txt" "$T/www/a b.txt"; tcurl "$BASE/a%20b.txt")" "hello"
H=$(tcurl -X POST -D - -o /dev/null "$BASE/")
expect_match "POST is 405" "$H" "^HTTP/1.1 405"
expect_match "405 carries Allow: GET, HEAD" "$H" "Allow: GET, HEAD"
expect "DELETE is 405" "$(tcurl -X DELETE -o /dev/null -w '%{http_code}' "$BASE/")" 405

# malformed requests: 400 and the connection closes
R=$(raw_request 'GARBAGE\r\n\r\n')
expect_match "malformed request line is 400" "$R" "^HTTP/1.1 400"
expect_match "400 closes the connection" "$R" "Connection: close"
R=$(raw_request 'GET / HTTP/1.1\r\n\r\n')
expect_match "HTTP/1.1 without Host is 400" "$R" "^HTTP/1.1 400"
R=$(raw_request 'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n')
expect_match "two Host headers is 400" "$R" "^HTTP/1.1 400"
R=$(raw_request 'GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello')
expect_match "GET with a body is refused with 413" "$R" "^HTTP/1.1 413 "
expect_match "...and close" "$R" "Connection: close"
R=$(raw_request 'GET /%zz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')
expect_match "bad percent escape is 400" "$R" "^HTTP/1.1 400"

# pipelining: three requests in one write, answered in order on one connection
R=$(raw_request 'GET /hello.txt HTTP/1.1\r\nHost: a\r\n\r\nGET /dir/ HTTP/1.1\r\nHost: a\r\n\r\nGET /style.css HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')
expect "pipelined responses come back in order" "$(printf '%s' "$R" | grep -E '^(hello|dir index|body)' | tr '\n' '|')" "hello|dir index|body { color: #222 }|"
expect "pipelined: three responses" "$(printf '%s' "$R" | grep -c '^HTTP/1.1 200')" 3

# keep-alive: several requests on one connection
R=$(probe get --path /hello.txt --keepalive 5)
expect "keep-alive: five requests on one TLS connection" "$(kv "$R" statuses)" "200,200,200,200,200"
expect "keep-alive: the connection stayed open" "$(kv "$R" reused_connection)" 1

# HTTP/1.0
H=$(tcurl --http1.0 -D - -o /dev/null "$BASE/hello.txt")
expect_match "HTTP/1.0 without keep-alive gets Connection: close" "$H" "Connection: close"
H=$(tcurl --http1.0 -H 'Connection: keep-alive' -D - -o /dev/null "$BASE/hello.txt")
expect_match "HTTP/1.0 with keep-alive gets Connection: keep-alive" "$H" "Connection: keep-alive"
R=$(raw_request 'GET /hello.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /dir/ HTTP/1.0\r\n\r\n')
expect "HTTP/1.0 keep-alive then close: both answered" "$(printf '%s' "$R" | grep -c '^HTTP/1.1 200')" 2
R=$(raw_request 'GET /hello.txt HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\nGET /dir/ HTTP/1.1\r\nHost: a\r\n\r\n')
expect "requests after Connection: close are not answered" "$(printf '%s' "$R" | grep -c '^HTTP/1.1')" 1

tcurl -A 'log-test/1 ("quoted")' -e "https://ref.example/" -o /dev/null "$BASE/hello.txt?q=1"

# 403 for a file the server cannot read: run as nobody (root reads everything)
stop_server
chmod -R a+rX "$T" && chmod 755 "$T"
printf 'secret\n' >"$T/www/secret.txt"
chmod 000 "$T/www/secret.txt"
(cp -r "$CERTS" "$T/certs" && chmod -R a+rX "$T/certs")
CERTS_SAVE=$CERTS
CERTS=$T/certs
PORT=$(pick_port)
ACCESS_LOG=- write_config
spawn_server setpriv --reuid=65534 --regid=65534 --clear-groups "$TS_BIN" --config "$T/tessera.json" --listen "127.0.0.1:$PORT" || exit 1
expect "unreadable file is 403" "$(tcurl -o /dev/null -w '%{http_code}' "https://localhost:$PORT/secret.txt")" 403
expect "readable file still 200 as nobody" "$(tcurl -o /dev/null -w '%{http_code}' "https://localhost:$PORT/hello.txt")" 200
stop_server
expect "server exits 0" "$?" 0
CERTS=$CERTS_SAVE
check_server_log

# access log, combined format (the request below was made by the first server)
L=$(grep 'log-test/1' "$T/access.log" | head -1)
expect_match "access log line in combined format" "$L" '^127\.0\.0\.1 - - \[[0-9]{2}/[A-Z][a-z]{2}/[0-9]{4}:[0-9:]{8} \+0000\] "GET /hello.txt\?q=1 HTTP/1\.1" 200 6 "https://ref\.example/" "log-test/1 \(\\"quoted\\"\)"$'

# timeouts.keepalive_s 0: no keep-alive at all, and every response says so
WORKERS=1 TIMEOUTS='"shutdown_s": 1, "keepalive_s": 0' start_server || exit 1
# the line comes once the workers run, which can be after the listener first answers
wait_until 10 grep -q 'listening on' "$T/error.log"
expect_match "the start-up line says 1 worker (singular)" "$(grep 'listening on' "$T/error.log")" ', 1 worker, root '

H=$(tcurl -s -D - -o /dev/null "$BASE/hello.txt" "$BASE/hello.txt")
expect "keepalive_s 0: both responses say Connection: close" "$(printf '%s' "$H" | grep -ci '^Connection: close')" 2
R=$(raw_request 'GET /hello.txt HTTP/1.1\r\nHost: a\r\n\r\nGET /hello.txt HTTP/1.1\r\nHost: a\r\n\r\n')
expect "keepalive_s 0: a pipelined second request is not answered" "$(printf '%s' "$R" | grep -c '^HTTP/1.1 200')" 1
stop_server
expect "server exits 0" "$?" 0
check_server_log

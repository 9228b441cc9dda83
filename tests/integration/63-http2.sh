#!/usr/bin/env bash
# HTTP/2 (ALPN h2, libnghttp2): the static features over h2, many streams on one connection,
# the access log, the timeouts, a graceful end, and the answers to hostile clients.
. "$(dirname "$0")/lib.sh"
make_site
W=$T/www
head -c 300000 /dev/urandom >"$W/big.bin"
head -c 10485760 /dev/zero >"$W/huge.bin"
head -c 1000000 /dev/zero >"$W/trunc.bin"
printf 'plain text\n' >"$W/gz.txt"
gzip -k "$W/gz.txt"
mkdir -p "$W/list" "$W/private"
printf 'a\n' >"$W/list/a.txt"
printf 'secret\n' >"$W/private/s.txt"
H2END() { timeout $((90 * MULT)) /usr/bin/python3 "$(dirname "$0")/../tools/h2end.py" end "$@" --port "$PORT" --cafile "$CERTS/ca.crt"; }
H2END_RACE() { timeout $((90 * MULT)) /usr/bin/python3 "$(dirname "$0")/../tools/h2end.py" race "$@" --port "$PORT" --cafile "$CERTS/ca.crt"; }
# sigterm_during OUT MARK CMD...: CMD in the background (its output in OUT); once it printed a
# line starting with MARK the server gets SIGTERM and is waited for; R is CMD's last line,
# STOP_MS how long the server took to exit
sigterm_during() {
    local out=$1 mark=$2 pid
    shift 2
    "$@" >"$out" 2>&1 &
    pid=$!
    for _ in $(seq 1 $((100 * MULT))); do
        grep -qs "^$mark" "$out" && break
        kill -0 $pid 2>/dev/null || break
        sleep 0.1
    done
    local t0
    t0=$(date +%s%N)
    stop_server
    STOP_MS=$((($(date +%s%N) - t0) / 1000000))
    wait $pid
    R=$(tail -1 "$out")
}
H2HOSTILE() { timeout $((60 * MULT)) /usr/bin/python3 "$(dirname "$0")/../tools/h2hostile.py" "$@" --port "$PORT" --cafile "$CERTS/ca.crt"; }
h2c() { tcurl --http2 "$@"; }
status_json() { tcurl -s "$BASE/status"; }
sj() { status_json | jq -r "$1"; }

ALLOWED_ERRORS='file truncated' \
    TOP_EXTRA='"locations": [ { "path": "/private/", "require_client_cert": true }, { "path": "/list/", "autoindex": true } ],' \
    TLS_EXTRA=", \"client_auth\": \"optional\", \"client_ca\": \"$CERTS/ca.crt\"" \
    TIMEOUTS='"shutdown_s": 1, "keepalive_s": 3, "request_header_s": 3, "send_s": 3' start_server || exit 1
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
R=$(timeout $((30 * MULT)) nghttp -n -s -d "$W/hello.txt" "$BASE/hello.txt" 2>&1)
expect_match "POST with a body: 405 (the body is not read)" "$R" " 405 "
R=$(timeout $((30 * MULT)) nghttp -n -s "$BASE/private/s.txt" "$BASE/hello.txt" 2>&1)
expect_match "one connection: a location needing a certificate is 403 on one stream" "$R" " 403 .*/private/s.txt"
expect_match "...while the other stream is 200" "$R" " 200 .*/hello.txt"
R=$(h2c -o /dev/null -w '%{http_code}\n' -H "X-Big: $(head -c 10000 /dev/zero | tr '\0' a)" "$BASE/hello.txt" 2>&1)
expect_match "a header list over max_header_bytes: 431 or reset" "$R" "431|RST|stream"
# many streams on one connection
expect "nghttp -m 100: 100 streams answered 200 on one connection" "$(timeout $((60 * MULT)) nghttp -n -s -m 100 "$BASE/hello.txt" 2>&1 | grep -c ' 200 ')" "100"
R=$(timeout $((120 * MULT)) h2load -n 2000 -c 4 -m 10 "$BASE/hello.txt" 2>&1)
expect_match "h2load -n 2000 -c 4 -m 10: all succeeded" "$R" "2000 succeeded, 0 failed"
expect_match "access log: HTTP/2.0" "$(tail -3 "$T/access.log")" '"GET /hello.txt HTTP/2.0" 200 6'

# fairness: a small request on a second stream is answered while a 10 MiB download runs
R=$(timeout $((60 * MULT)) nghttp -n -s -w 16 "$BASE/huge.bin" "$BASE/hello.txt" 2>&1)
expect_match "10 MiB download and a small file on one connection: both 200" "$(grep -c ' 200 ' <<<"$R")" "^2$"
# nghttp -s: completion times since the connection began, as +1.57ms, +923us or +1.2s
end_us() { awk -v p="$1" '$0 ~ p { t = $2; sub(/^\+/, "", t); m = 1
    if (t ~ /us$/) sub(/us$/, "", t); else if (t ~ /ms$/) { sub(/ms$/, "", t); m = 1000 }
    else if (t ~ /s$/) { sub(/s$/, "", t); m = 1000000 }
    printf "%d\n", t * m }' <<<"$R"; }
HUGE_END=$(end_us huge.bin)
SMALL_END=$(end_us hello.txt)
echo "# huge.bin done at ${HUGE_END} us, hello.txt at ${SMALL_END} us"
if [ -n "$HUGE_END" ] && [ -n "$SMALL_END" ] && [ "$((SMALL_END * 4))" -lt "$HUGE_END" ]; then
    ok "...the small file is not held behind the download (done in its first quarter)"
else
    not_ok "...the small file is not held behind the download (small ${SMALL_END} us, download ${HUGE_END} us)"
fi

# hostile clients: each gets its answer, and another client is served meanwhile
hostile() { # MODE EXPECTED-REGEX [ARGS]
    local mode=$1 want=$2 out
    shift 2
    H2HOSTILE "$mode" --seconds $((5 * MULT)) "$@" >"$T/hostile.$mode" 2>&1 &
    local hp=$!
    expect "$mode: another client is served meanwhile" "$(h2c -o /dev/null -w '%{http_code}' "$BASE/hello.txt")" "200"
    wait $hp
    out=$(tail -1 "$T/hostile.$mode")
    expect_match "$mode: $want" "$out" "$want"
}
F0=$(sj '.http2.closed_flood | add')
hostile rapid-reset "result=goaway code=(INTERNAL_ERROR|ENHANCE_YOUR_CALM)"
hostile continuation-flood "result=(goaway|closed)"
# 60 responses queued without copies of their headers, their streams reset before a byte is
# written (44 of them freed): nothing reads them afterwards (ASan), 20 later streams are answered
hostile reset-burst "result=survived alive=1 .*reset_answered=0 answered=20/20 bodies=6 " --path /hello.txt
hostile settings-flood "result=(goaway code=ENHANCE_YOUR_CALM|closed)"
hostile ping-flood "result=(goaway code=ENHANCE_YOUR_CALM|closed)"
hostile priority-flood "result=goaway code=ENHANCE_YOUR_CALM"
hostile window-update-flood "result=goaway code=ENHANCE_YOUR_CALM"
# the request waits for the end of its body: a flood of empty DATA frames is a flood
hostile empty-data-flood "result=goaway code=ENHANCE_YOUR_CALM"
# decoding stops at 4x max_header_bytes: the connection ends (63-http2-clients has more)
hostile hpack-bomb "result=goaway code=ENHANCE_YOUR_CALM"
hostile too-many-streams "result=goaway code=PROTOCOL_ERROR|rst=REFUSED_STREAM"
# a body past TS_H2_BODY_DISCARD_MAX is answered before it ends, and the stream reset
hostile request-body "result=response status=405 rst=NO_ERROR"
# a small body is read and dropped: the answer comes after it, no reset
hostile request-body "result=response status=405 rst=- body_sent=3000 goaway=- alive=1" --count 3000
R=$(H2HOSTILE invalid-pseudo --seconds $((3 * MULT)))
echo "# invalid-pseudo: $R"
expect_no_match "invalid pseudo-headers: never a 200 for a malformed request" "$(tr ' ' '\n' <<<"$R" | grep -v '^te_trailers')" "=status:200"
expect_match "...the valid te: trailers is served" "$R" "status:200"
F1=$(sj '.http2.closed_flood | add')
check "floods counted in http2.closed_flood ($F0 -> $F1)" test "$F1" -ge $((F0 + 5))
check "GOAWAY and RST_STREAM counted" test "$(sj '.http2.goaway_sent')" -gt 0 -a "$(sj '.http2.rst_stream_sent')" -gt 0
expect "requests by protocol: h2 counted" "$(sj '.http2.requests_h2 > 0')" "true"

# a reader that never opens its window loses the stream after send_s; the connection stays
R=$(H2HOSTILE slow-reader --path /huge.bin --rcvbuf 4096 --seconds $((10 * MULT)))
expect_match "slow reader: the stalled stream is reset (CANCEL) within send_s, the connection kept" "$R" "result=survived alive=1 .*rst=CANCEL"
echo "# slow-reader: $R"
# a file cut short while its response waits on the client's window: that stream is reset, the
# connection and its next stream go on
R=$(H2HOSTILE truncate --path /trunc.bin --truncate-file "$W/trunc.bin" --path2 /hello.txt --seconds $((5 * MULT)))
echo "# truncate: $R"
expect_match "a file truncated under a stream: RST_STREAM INTERNAL_ERROR, the next stream served" "$R" \
    "result=survived alive=1 .*rst1=INTERNAL_ERROR .*status3=200 body3=6"
# a client allowing 16 MiB frames and as large a window: a frame larger than the write block
# would never be written (the response stalled until send_s); the 300 KB file comes whole
R=$(H2HOSTILE big-frames --path /big.bin --seconds $((10 * MULT)))
echo "# big-frames: $R"
expect_match "SETTINGS_MAX_FRAME_SIZE 16 MiB: a 300 KB file arrives whole" "$R" \
    "result=survived alive=1 .*status=200 rst=- body_bytes=300000 complete=1"
# an idle connection that leaves the server's PING unanswered: GOAWAY NO_ERROR naming no limit
# after request_header_s (3 s here), the final GOAWAY 1 s later, then closed
R=$(H2HOSTILE idle --seconds $((15 * MULT)))
echo "# idle: $R"
expect_match "idle connection deaf to PING: two GOAWAYs NO_ERROR (the second naming no stream), then closed" "$R" \
    "result=goaway code=NO_ERROR last_stream=0 .*closed_after=1 goaways=2 "
# on the wire: the answer, GOAWAY NO_ERROR naming the stream, then close_notify (python reads
# b''), not a bare TCP close (SSLEOFError) nor a reset
R=$(H2END --path /hello.txt --seconds $((20 * MULT)) | tail -1)
echo "# keep-alive timeout: $R"
expect_match "keep-alive timeout: the answer, GOAWAY NO_ERROR naming no limit, then (PING answered) GOAWAY last_stream 1, then close_notify" "$R" \
    "^goaway=NO_ERROR last_stream=1 done=1 bytes_1=6 end=close_notify order=end_1,goaway_notice,ping,goaway,close_notify "

# SIGTERM with a stream in flight, on the wire: GOAWAY NO_ERROR naming it, its body whole, then
# the TLS close_notify
sigterm_during "$T/sigterm.out" started H2END --path /huge.bin --rate 4000000 --seconds $((60 * MULT))
echo "# SIGTERM: $R"
expect_match "SIGTERM: GOAWAY NO_ERROR with last_stream 1 (the stream in flight)" "$R" "^goaway=NO_ERROR last_stream=1 "
expect_match "...the stream's 10 MiB body complete" "$R" " done=1 bytes_1=10485760 "
# (the PING's answer comes after the stream's end when the socket buffers held the rest of it)
expect_match "...then close_notify: both GOAWAYs, the end of the stream, close_notify last" "$R" \
    " end=close_notify order=goaway_notice,ping,(goaway,end_1|end_1,goaway),close_notify "
check_server_log
TIMEOUTS='"shutdown_s": 1, "keepalive_s": 3, "request_header_s": 3, "send_s": 3' start_server || exit 1

# SIGTERM with a stream in flight: it completes, then GOAWAY and close_notify
timeout $((60 * MULT)) curl -sS --http2 --cacert "$CERTS/ca.crt" --resolve "localhost:$PORT:127.0.0.1" \
    --limit-rate 4M -o "$T/huge.out" -w '%{http_code} %{size_download}' "$BASE/huge.bin" >"$T/huge.res" 2>&1 &
CP=$!
# the signal once the body is coming, however long curl took to start
check "SIGTERM: a download is under way" wait_until 10 test -s "$T/huge.out"
stop_server
wait $CP
expect "SIGTERM: the download in flight completes" "$(cat "$T/huge.res")" "200 10485760"
check_server_log

# SIGTERM while a request is on its way: the client sends stream 3 after it read the first
# GOAWAY and before it answers the PING, as one whose request crossed the GOAWAY does. A single
# GOAWAY naming stream 1 refused it (curl 7.88 fails such a request instead of retrying it);
# the second GOAWAY, sent at the PING's answer, names stream 3, which is served.
TIMEOUTS='"shutdown_s": 1' start_server || exit 1
sigterm_during "$T/race.out" ready H2END_RACE --path /hello.txt --seconds $((30 * MULT))
echo "# SIGTERM race: $R"
expect_match "SIGTERM race: GOAWAY naming no limit first (then the PING), the final one naming stream 3" "$R" "^goaways=2147483647,3 "
expect_match "...stream 3, sent after the first GOAWAY, answered; then close_notify" "$R" \
    " done=2 bytes_1=6 bytes_3=6 end=close_notify order=end_1,goaway_notice,ping,sent_3,[a-z_0-9,]*close_notify$"
check_server_log

# SIGTERM with an idle client deaf to PING (a vanished peer): the final GOAWAY comes
# TS_GOAWAY_ACK_MS (1 s) after the first, the close follows; the drain does not wait drain_s
# (no other timer may end it first: request_header_s and keepalive_s 60 s too)
TIMEOUTS='"shutdown_s": 1, "drain_s": 60, "request_header_s": 60, "keepalive_s": 60' start_server || exit 1
sigterm_during "$T/deaf.out" ready H2HOSTILE idle --seconds $((30 * MULT))
echo "# SIGTERM, client deaf to PING: the server exited after $STOP_MS ms; $R"
check "...the server exits long before drain_s (60 s): within $((3 * MULT)) s" test "$STOP_MS" -lt $((3000 * MULT))
expect_match "...the client got both GOAWAYs (the final naming no stream), then the close" "$R" \
    "result=goaway code=NO_ERROR last_stream=0 .*closed_after=1 goaways=2 "
check_server_log

# SIGTERM while a download is under way and the client reads slowly: the first GOAWAY and the
# PING wait behind the response in the socket buffers, so the client cannot answer within a
# second; a request it sends 1.5 s later, before it answers the PING, is still served (the
# final GOAWAY waits while output is queued) and the final GOAWAY names it
TIMEOUTS='"shutdown_s": 1, "drain_s": 60' start_server || exit 1
sigterm_during "$T/late.out" started H2END --path /huge.bin --rate 1500000 --late-path /hello.txt --late-after 1.5 \
    --seconds $((60 * MULT))
echo "# SIGTERM, busy connection, late request: $R"
expect_match "SIGTERM, busy connection: a request sent 1.5 s later (PING not yet answered) is served, the final GOAWAY names it" \
    "$R" "^goaway=NO_ERROR last_stream=3 done=2 bytes_1=10485760 bytes_3=6 end=close_notify "
check_server_log

# the last of max_requests_per_connection: GOAWAY names it, later streams are not served
LIMITS='"max_requests_per_connection": 5' LOG_EXTRA=', "format": "json"' start_server || exit 1
L0=$(wc -l <"$T/access.log")
R=$(timeout $((30 * MULT)) nghttp -nv -m 8 "$BASE/hello.txt" 2>&1)
expect "max_requests_per_connection 5: five streams answered" "$(grep -c 'recv DATA frame' <<<"$R")" "5"
expect_match "...and GOAWAY NO_ERROR" "$R" "recv GOAWAY.*|error_code=NO_ERROR"
# the streams that arrived with the fifth, past the GOAWAY's last stream, are refused unanswered:
# neither handled nor logged
expect "...the three streams past the GOAWAY are not handled (access log)" "$(($(wc -l <"$T/access.log") - L0))" "5"
R=$(H2END --path /hello.txt --streams 8 --seconds $((20 * MULT)) | tail -1)
echo "# max_requests_per_connection: $R"
expect_match "max_requests_per_connection, on the wire: GOAWAY NO_ERROR last_stream 9, five answers, then close_notify" "$R" \
    "^goaway=NO_ERROR last_stream=9 done=5 .* end=close_notify order=[a-z_0-9,]*,close_notify "
expect_match "JSON access log: protocol HTTP/2.0" "$(tail -1 "$T/access.log")" '"protocol":"HTTP/2.0","status":200'
stop_server
check_server_log
exit "$FAILS"

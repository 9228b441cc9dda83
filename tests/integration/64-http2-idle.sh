#!/usr/bin/env bash
# Idle HTTP/2 connections give back their TLS buffers like idle HTTP/1.1 ones: 1,000 h2
# connections, each after one request, cost the server a bounded amount of memory each, and
# each still answers a request afterwards (the buffers come back on the next read).
. "$(dirname "$0")/lib.sh"
make_site
N=1000
WORKERS=2 TIMEOUTS='"shutdown_s": 1, "keepalive_s": 300, "request_header_s": 300' start_server || exit 1
tcurl --http2 -o /dev/null "$BASE/hello.txt"
sleep 1.5 # the first connection's buffers and the heap trim settle
rss0=$(rss_kb "$SERVER_PID")
fifo=$T/hold.fifo
in=$T/hold.in
mkfifo "$fifo" "$in"
timeout $((300 * MULT)) /usr/bin/python3 "$(dirname "$0")/../tools/h2end.py" hold --port "$PORT" \
    --cafile "$CERTS/ca.crt" --path /hello.txt --count $N --seconds $((240 * MULT)) <"$in" >"$fifo" 2>"$T/hold.err" &
HOLD=$!
PIDS+=("$HOLD")
exec 4>"$in"
exec 3<"$fifo"
line=
read -r -t $((240 * MULT)) line <&3
expect "$N h2 connections, one request answered on each" "$line" "held=$N failed=0"
# released 200 ms after the connection goes idle; the heap trim runs at most once a second:
# in the release build, wait (bounded) until the RSS has come down under the bound, however
# late the timers ran on a loaded machine
per_conn() { echo $((($(rss_kb "$SERVER_PID") - rss0) * 1024 / N)); }
small() { [ "$(per_conn)" -lt 51200 ]; }
case $TS_BUILD in
*asan* | *tsan*) sleep 2 ;;
*) wait_until 10 small ;;
esac
rss1=$(rss_kb "$SERVER_PID")
per=$(((rss1 - rss0) * 1024 / N))
echo "# server RSS ${rss0} KiB -> ${rss1} KiB: about ${per} bytes per idle HTTP/2 connection"
# About 15 KiB of OpenSSL state and 25 KiB of nghttp2 session (its 16 KiB frame buffer
# included) stay; OpenSSL's record buffers on top of that make it over 55 KiB
case $TS_BUILD in
*asan* | *tsan*) echo "# RSS is compared in the release build only: sanitizer allocators hold freed memory" ;;
*) check "an idle h2 connection costs under 50 KiB (${per} bytes): its TLS buffers were given back" \
    test "$per" -lt 51200 ;;
esac
echo again >&4
line=
read -r -t $((240 * MULT)) line <&3
expect "each idle connection answers one more request" "$line" "answered=$N"
exec 4>&-
R=$(timeout $((60 * MULT)) cat <&3)
exec 3<&-
wait "$HOLD"
expect_match "the server closed none of them" "$R" "closed_by_server=0"
stop_server
expect "server exits 0" "$?" 0
check_server_log
exit "$FAILS"

#!/usr/bin/env bash
# Leak soak: tens of thousands of connections abandoned at random stages, twice. After the
# timeouts the descriptor count is back to its baseline and resident memory has not grown in
# the second round. Then valgrind on a short run: no definite leaks.
. "$(dirname "$0")/lib.sh"
make_site
head -c $((2 * 1024 * 1024)) /dev/urandom >"$T/www/two.bin"
N=${SOAK_COUNT:-$((20000 / MULT))}
TIMEOUTS='"shutdown_s": 1, "handshake_s": 2, "request_header_s": 2' ACCESS_LOG=off start_server || exit 1
# warm every worker's open-file cache with the files the clients ask for (round robin: two
# connections per path reach both workers), so the baseline includes those descriptors
for p in hello.txt hello.txt two.bin two.bin; do tcurl -I -o /dev/null "$BASE/$p"; done
fd0=$(fd_count "$SERVER_PID")

round() { # n -> prints RSS after the round settled
    local R
    R=$(timeout $((300 * MULT)) "$TS_PROBE" soak --port "$PORT" --count "$N" --procs 8 --seed "$1" --path /two.bin --timeout-ms $((3000 * MULT)))
    echo "# round $1: $R" >&2
    for _ in $(seq 1 $((100 * MULT))); do
        [ "$(fd_count "$SERVER_PID")" -le "$fd0" ] && [ "$(tcurl -s "$BASE/status" | jq .connections.active)" = 1 ] && break
        sleep 0.1
    done
    rss_kb "$SERVER_PID"
}
rss1=$(round 1)
fd1=$(fd_count "$SERVER_PID")
expect "round 1 ($N clients): descriptors back to the baseline" "$fd1" "$fd0"
rss2=$(round 2)
fd2=$(fd_count "$SERVER_PID")
expect "round 2 ($N clients): descriptors back to the baseline" "$fd2" "$fd0"
echo "# RSS after round 1: ${rss1} KiB, after round 2: ${rss2} KiB"
case $TS_BUILD in
*asan* | *tsan*) echo "# RSS is compared in the release build only: sanitizer allocators hold freed memory on purpose" ;;
*)
    if [ "$rss2" -le $((rss1 + 1024)) ]; then ok "resident memory did not grow in the second round (${rss1} -> ${rss2} KiB)"; else
        not_ok "resident memory grew from ${rss1} to ${rss2} KiB"
    fi
    ;;
esac
S=$(tcurl -s "$BASE/status")
expect "no connection slot left behind" "$(printf '%s' "$S" | jq '.connections.active, .connections.handshaking, .requests.in_flight' | tr '\n' ' ')" "1 0 1 "
acc=$(printf '%s' "$S" | jq .connections.accepted)
closed=$(printf '%s' "$S" | jq '.connections.closed_clean + .connections.closed_peer_eof + .connections.closed_timeout + .connections.closed_error')
expect "every accepted connection was closed and classified" "$((acc - closed))" 1
expect "still serving" "$(tcurl "$BASE/hello.txt")" hello
stop_server
expect "server exits 0" "$?" 0
check_server_log

# valgrind: a short run with every kind of request and client, then SIGTERM
case $TS_BUILD in
*asan* | *tsan*) echo "# valgrind run skipped for sanitizer builds" ;;
*)
    PORT=$(pick_port)
    BASE=https://localhost:$PORT
    TIMEOUTS='"shutdown_s": 1, "handshake_s": 3, "request_header_s": 3' ACCESS_LOG=off write_config
    START_WAIT=300 spawn_server valgrind --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=99 \
        --log-file="$T/vg.log" "$TS_BIN" --config "$T/tessera.json" || exit 1
    expect "valgrind: files are served (openat2 or its fallback)" "$(tcurl -o /dev/null -w '%{http_code}' "$BASE/hello.txt")" 200
    got=$(for u in nope dir status metrics; do tcurl -o /dev/null -w '%{http_code} ' "$BASE/$u"; done)
    expect "valgrind: a 404, a redirect, /status and /metrics" "$got" "404 301 200 200 "
    probe get --keepalive 5 --path /two.bin >/dev/null
    probe resume --count 5 --mech tls12-ticket >/dev/null
    probe resume --count 5 --mech tls12-id >/dev/null
    probe resume --count 5 --mech tls13 >/dev/null
    raw_request 'GARBAGE\r\n\r\n' >/dev/null
    for st in connect handshake request response; do probe vanish --stage $st --path /two.bin >/dev/null; done
    curl -s --max-time 5 "http://127.0.0.1:$PORT/" >/dev/null
    "$TS_PROBE" hold --port "$PORT" --count 5 --seconds 1 --ignore-stdin >/dev/null 2>&1
    sleep 1
    STOP_WAIT=300 stop_server
    expect "valgrind: exit status 0 (no definite leaks, no errors)" "$?" 0
    expect_match "valgrind: definitely lost 0 bytes" "$(cat "$T/vg.log")" "definitely lost: 0 bytes|All heap blocks were freed"
    expect_match "valgrind: no memory errors" "$(cat "$T/vg.log")" "ERROR SUMMARY: 0 errors"
    ;;
esac
check_server_log

#!/usr/bin/env bash
# Zero-downtime upgrade: while clients open TLS connections as fast as they can and others
# keep HTTP/1.1 connections alive, a second tessera starts on the same port with --upgrade
# (SO_REUSEPORT; without it the port in use is refused: 73-listen-in-use), then the first gets
# SIGTERM and drains; three swaps. No request may fail (refused, reset,
# cut), every server exits 0 with a clean log, and each new server serves after the old left.
. "$(dirname "$0")/lib.sh"
make_site
TIMEOUTS='"shutdown_s": 1, "drain_s": 20'
ACCESS_LOG=$T/access.0.log start_server || exit 1
LOAD="$(dirname "$0")/../tools/upgrade-load.py"
timeout $((300 * MULT)) python3 "$LOAD" --port "$PORT" --cafile "$CERTS/ca.crt" \
    --stop-file "$T/stop" --progress-file "$T/progress" --max-s $((240 * MULT)) >"$T/load.out" 2>&1 &
LOAD_PID=$!
PIDS+=("$LOAD_PID")
# HTTP/2 too: curl runs of 100 requests in turn on one connection, one run after the other
# until the end (bounded in count and time). curl opens a new connection for the requests after
# a GOAWAY, but fails (16, "Error in the HTTP2 framing layer") a request that crossed a GOAWAY
# naming an earlier stream: the graceful close (GOAWAY naming no limit, PING, final GOAWAY)
# leaves none refused. h2load is no judge here: it counts the requests it had not sent yet at a
# GOAWAY as failed. Each request's status goes to h2.out, 000 if failed.
urls=()
for n in $(seq 1 100); do urls+=(-o /dev/null "https://localhost:$PORT/hello.txt?h2-$n"); done
(for _ in $(seq 1 1000); do
    [ -e "$T/stop" ] && break
    tcurl --http2 -w '%{http_code} %{http_version}\n' "${urls[@]}" 2>&1
done) >"$T/h2.out" &
H2PID=$!
PIDS+=("$H2PID")
# done_count: requests the load has completed so far (both kinds)
done_count() {
    local p
    p=$(cat "$T/progress" 2>/dev/null) || { echo 0; return; }
    echo $(($(kv "$p" new_ok) + $(kv "$p" ka_ok)))
}
# more_done N: the load completed at least N more requests than now (bounded wait)
more_done() {
    local target=$(($(done_count) + $1))
    wait_until 30 test_done "$target"
}
test_done() { [ "$(done_count)" -ge "$1" ]; }
served() { [ -s "$1" ]; }
check "the load runs against the first server" more_done 50

for i in 1 2 3; do
    OLD_PID=$SERVER_PID OLD_IDX=$SERVER_IDX
    # the same port: write_config uses $PORT; the new server has its own access log
    ACCESS_LOG=$T/access.$i.log write_config
    cp "$T/tessera.json" "$T/tessera.$i.json"
    spawn_server "$TS_BIN" --config "$T/tessera.$i.json" --upgrade >/dev/null
    # port_in_use saw the old server: wait for the new one's own "listening" line
    check "swap $i: the new server listens on the same port" \
        wait_until 20 grep -q "listening on 127.0.0.1:$PORT" "$T/error.$SERVER_IDX.log"
    check "swap $i: the new server takes connections while the old one runs" \
        wait_until 30 served "$T/access.$i.log"
    NEW_PID=$SERVER_PID NEW_IDX=$SERVER_IDX
    SERVER_PID=$OLD_PID SERVER_IDX=$OLD_IDX
    stop_server
    expect "swap $i: the old server drained and exited 0" "$?" 0
    SERVER_PID=$NEW_PID SERVER_IDX=$NEW_IDX
    before=$(wc -l <"$T/access.$i.log")
    check "swap $i: the load goes on after the old server left" more_done 50
    after=$(wc -l <"$T/access.$i.log")
    check "swap $i: the new server served after the old one left" test "$after" -gt "$before"
done

touch "$T/stop"
wait "$LOAD_PID"
wait "$H2PID"
echo "# HTTP/2: $(grep -c '^200 2$' "$T/h2.out") requests answered 200 over HTTP/2, $(grep -vc '^200 2$' "$T/h2.out") other lines"
expect_no_match "HTTP/2: no request failed" "$(cat "$T/h2.out")" '^([^2]|2[^0]|20[^0]|200 [^2])'
check "HTTP/2: requests were made" test "$(grep -c '^200 2$' "$T/h2.out")" -gt 100
check "HTTP/2: served by the servers that took over too" \
    grep -q '"GET /hello.txt?h2-[0-9]* HTTP/2' "$T/access.1.log" "$T/access.2.log" "$T/access.3.log"
OUT=$(cat "$T/load.out")
echo "# load: $OUT" | head -12
line=$(printf '%s\n' "$OUT" | grep '^new_ok=')
expect "no request failed (refused, reset or cut)" "$(kv "$line" failed)" 0
check "requests were made on new connections and on kept-alive ones" \
    test "$(kv "$line" new_ok)" -gt 100 -a "$(kv "$line" ka_ok)" -gt 100
stop_server
expect "the last server exits 0" "$?" 0
check_server_log
exit $((FAILS > 0))

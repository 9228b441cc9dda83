#!/usr/bin/env bash
# HTTP/2 as clients use it: a slow reader that asks for a small file during a download, one
# that cancels its download, one that credits every DATA frame it reads, one that never opens
# its window and only pings, one that bombs the HPACK decoder, and short-lived clients that
# close right after their response (curl), over HTTP/2 and HTTP/1.1 on a busy worker.
. "$(dirname "$0")/lib.sh"
make_site
head -c 10485760 /dev/zero >"$T/www/huge.bin"
CLIENT() { timeout $((120 * MULT)) /usr/bin/python3 "$(dirname "$0")/../tools/h2clients.py" "$@" --port "$PORT" --cafile "$CERTS/ca.crt"; }
status_json() { tcurl -s "$BASE/status"; }
sj() { status_json | jq -r "$1"; }
kvof() { printf '%s\n' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p" | head -1; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$SERVER_PID/stat"; }

TIMEOUTS='"shutdown_s": 1, "send_s": 2' WORKERS=2 start_server || exit 1

### a slow reader (2 MB/s, windows open wide) asks for a small file 1 s into a 10 MiB download
R=$(CLIENT slow-download --path /huge.bin --path2 /hello.txt --rate 2e6 --at 1 --seconds $((30 * MULT)))
echo "# slow-download: $R"
expect "slow reader: the small file is served during the download" "$(kvof "$R" small_status)" 200
ms=$(kvof "$R" small_ms)
expect_match "...within 1 s of its request (${ms} ms; every other server took 2.9-4.0 s)" \
    "$(( ms >= 0 && ms < 1000 * MULT ))" '^1$'
ms=$(kvof "$R" ping_ms)
expect_match "...and a PING is answered as soon (${ms} ms)" "$(( ms >= 0 && ms < 1000 * MULT ))" '^1$'

### the same reader cancels its download: what still arrives is what was already on its way
R=$(CLIENT slow-download --path /huge.bin --path2 /hello.txt --rate 2e6 --at 1 --cancel --seconds $((30 * MULT)))
echo "# cancel: $R"
after=$(kvof "$R" after_cancel)
expect_match "after RST_STREAM CANCEL at most 1 MB of the download arrives (${after} bytes)" \
    "$(( after >= 0 && after <= 1000000 ))" '^1$'
expect "...the download is not completed" "$(kvof "$R" download_done)" 0
expect "...and the small file is served" "$(kvof "$R" small_status)" 200

### a client that credits every DATA frame it reads (twice: stream and connection)
R=$(CLIENT credit-each --path /huge.bin --path2 /hello.txt --rate 20e6 --seconds $((30 * MULT)))
echo "# credit-each: $R"
expect "credit for every frame: the 10 MiB arrive whole" "$(kvof "$R" bytes) $(kvof "$R" complete)" "10485760 1"
expect "...no GOAWAY (the credit is work, not a flood)" "$(kvof "$R" result)" survived
expect "...and the next request on the connection gets 200" "$(kvof "$R" next_status)" 200

### a stream waiting its turn behind another (Chrome's exclusive priorities) is not stalled
R=$(CLIENT priority-chain --path /huge.bin --path2 /hello.txt --rate 1e6 --seconds $((5 * MULT)))
echo "# priority-chain: $R"
expect "a stream that waits its turn behind a download past send_s is not reset" "$(kvof "$R" second_rst)" -

### 20 clients x 64 streams that never open their window, each pinging every 2 s
for i in $(seq 1 20); do
    CLIENT zero-window --path /hello.txt --count 64 --every 2 --seconds $((20 * MULT)) >"$T/zw.$i" 2>&1 &
    ZW[i]=$!
done
for i in $(seq 1 20); do wait "${ZW[i]}"; done
bad=0
for i in $(seq 1 20); do
    R=$(tail -1 "$T/zw.$i")
    [ "$(kvof "$R" reset)" = 64 ] && [ "$(kvof "$R" cancel)" = 64 ] || { bad=$((bad + 1)); echo "# zero-window $i: $R"; }
done
echo "# zero-window 1: $(tail -1 "$T/zw.1")"
expect "zero window and PINGs: every stream of 20 connections reset (CANCEL) by its send deadline" "$bad" 0
last=0
for i in $(seq 1 20); do
    l=$(kvof "$(tail -1 "$T/zw.$i")" last_reset_ms)
    [ "${l:--1}" -gt "$last" ] && last=$l
done
expect_match "...the last within 3 x send_s (${last} ms)" "$(( last > 0 && last <= 6000 * MULT ))" '^1$'
wait_until 5 test "$(sj '.http2.streams_open')" = 0
expect "...no stream left open" "$(sj '.http2.streams_open')" 0

### an HPACK bomb: the connection ends at the first block; the worker does not spend a core on it
ticks0=$(cpu_ticks)
R=$(CLIENT hpack-bomb --path /hello.txt --seconds $((5 * MULT)))
ticks1=$(cpu_ticks)
echo "# hpack-bomb: $R (server CPU $((ticks1 - ticks0)) ticks)"
expect "HPACK bomb: GOAWAY ENHANCE_YOUR_CALM" "$(kvof "$R" result) $(kvof "$R" code)" "goaway ENHANCE_YOUR_CALM"
ms=$(kvof "$R" elapsed_ms)
expect_match "...within 2 s (${ms} ms), at its first block ($(kvof "$R" blocks))" "$(( ms < 2000 * MULT ))" '^1$'
expect_match "...counted in http2.closed_flood.header_list" "$(sj '.http2.closed_flood.header_list')" '^[1-9]'
R=$(CLIENT trailer-bomb --path /hello.txt --seconds $((5 * MULT)))
echo "# trailer-bomb: $R"
expect "an HPACK bomb in trailers: GOAWAY ENHANCE_YOUR_CALM at once" "$(kvof "$R" result) $(kvof "$R" code)" "goaway ENHANCE_YOUR_CALM"
# a window opened a byte at a time, a frame of a byte each (data dribble): not work
R=$(CLIENT dribble --path /huge.bin --count 5000 --seconds $((10 * MULT)))
echo "# dribble: $R"
expect "credit a byte at a time: GOAWAY ENHANCE_YOUR_CALM (data dribble)" "$(kvof "$R" result) $(kvof "$R" code)" "goaway ENHANCE_YOUR_CALM"
# a header list a little over the limit is not a bomb: 431, and the connection goes on
R=$(tcurl --http2 -o /dev/null -w '%{http_code} ' -H "X-Big: $(head -c 9000 /dev/zero | tr '\0' a)" "$BASE/hello.txt" \
    --next --http2 --cacert "$CERTS/ca.crt" --resolve "localhost:$PORT:127.0.0.1" -o /dev/null -w '%{http_code} %{num_connects}' "$BASE/hello.txt")
expect "a header a little over max_header_bytes: 431, then the next request on the same connection" "$R" "431 200 0"

### short-lived clients: 200 one-shot HTTP/2 curls (two batches of 100 in parallel)
for b in 1 2; do
    pids=()
    for i in $(seq 1 100); do
        tcurl --http2 -o /dev/null "$BASE/hello.txt" 2>/dev/null &
        pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p"; done
done
closewait() { ss -Htan state close-wait "sport = :$PORT" | wc -l; }
wait_until 2 test "$(closewait)" -le 2
expect_match "200 one-shot HTTP/2 clients: at most 2 left in CLOSE-WAIT 2 s later ($(closewait))" "$(closewait)" '^[012]$'
expect_match "...and /status counts them closed, not idle ($(sj '.connections.idle'))" "$(sj '.connections.idle')" '^[0-2]$'

### HTTP/1.1 on a busy worker: 30 one-shot clients while h2load keeps both workers busy
timeout $((30 * MULT)) h2load -c 16 -m 10 -D $((8 * MULT)) "$BASE/hello.txt" >"$T/h2load.out" 2>&1 &
LOAD=$!
sleep 1
for i in $(seq 1 30); do tcurl -o /dev/null "$BASE/hello.txt"; done
wait_until 2 test "$(closewait)" -eq 0
expect "30 one-shot HTTP/1.1 clients on busy workers: no FIN missed ($(closewait) in CLOSE-WAIT)" "$(closewait)" 0
kill "$LOAD" 2>/dev/null
wait "$LOAD" 2>/dev/null

stop_server
check_server_log

#!/usr/bin/env bash
# Idle keep-alive connections cost memory, not threads: two workers hold 3,000 idle TLS
# connections and still answer a new request promptly.
. "$(dirname "$0")/lib.sh"
make_site
WORKERS=2 TIMEOUTS='"shutdown_s": 1, "keepalive_s": 120, "request_header_s": 120' start_server || exit 1
tcurl -o /dev/null "$BASE/"
rss0=$(rss_kb "$SERVER_PID")
fifo=$T/hold.fifo
mkfifo "$fifo"
"$TS_PROBE" hold --port "$PORT" --cafile "$CERTS/ca.crt" --count 3000 --seconds $((120 * MULT)) \
    --timeout-ms $((20000 * MULT)) --ignore-stdin >"$fifo" 2>"$T/hold.err" &
HOLD=$!
PIDS+=("$HOLD")
exec 3<"$fifo"
line=
read -r -t $((120 * MULT)) line <&3
expect "3000 TLS connections established" "$line" "established=3000 failed=0"
sleep 0.5
rss1=$(rss_kb "$SERVER_PID")
per=$(((rss1 - rss0) * 1024 / 3000))
echo "# server RSS ${rss0} KiB -> ${rss1} KiB: about ${per} bytes per idle TLS connection"
for i in 1 2 3 4 5; do
    start=$(date +%s%N)
    code=$(tcurl -o /dev/null -w '%{http_code}' "$BASE/hello.txt")
    ms=$((($(date +%s%N) - start) / 1000000))
    if [ "$code" = 200 ] && [ "$ms" -lt $((1000 * MULT)) ]; then ok "request $i answered in ${ms} ms with 3000 idle connections open"; else
        not_ok "request $i: status $code in ${ms} ms"
    fi
done
expect "all 3000 still open" "$(ls /proc/$SERVER_PID/fd | wc -l | awk '{print ($1 >= 3000)}')" 1
kill -TERM "$HOLD"
R=$(timeout 30 cat <&3)
exec 3<&-
wait "$HOLD"
expect_match "the holder closed its connections itself" "$R" "closed_by_server=0"
# 3000 closes to handle: 5 s in a release build, longer under a sanitizer
for _ in $(seq 1 $((50 * MULT))); do [ "$(fd_count "$SERVER_PID")" -lt 100 ] && break; sleep 0.1; done
if [ "$(fd_count "$SERVER_PID")" -lt 100 ]; then ok "descriptors released after the clients left"; else not_ok "server still holds $(fd_count "$SERVER_PID") descriptors"; fi
stop_server
expect "server exits 0" "$?" 0
check_server_log

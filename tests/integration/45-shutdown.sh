#!/usr/bin/env bash
# Connection shutdown: close_notify after Connection: close and HTTP/1.0, the peer's awaited
# for at most timeouts.shutdown_s without blocking a worker, the peer's close_notify answered,
# and every close classified (clean, peer_eof, timeout, error).
. "$(dirname "$0")/lib.sh"
make_site
WORKERS=1 LOG_LEVEL=debug TIMEOUTS='"shutdown_s": 2, "keepalive_s": 3' start_server || exit 1

closes() { grep -c "closed ($1)" "$T/error.log"; }
closes_at_least() { [ "$(closes "$1")" -ge "$2" ]; } # KIND N

c0=$(closes clean)
R=$(probe close-notify --path /hello.txt)
expect "Connection: close response is followed by close_notify" "$(kv "$R" end)" close_notify
expect "...with the whole body" "$(kv "$R" body_bytes)" 6
wait_until 3 closes_at_least clean $((c0 + 1))
expect "...and the exchange counts as a clean close" "$(closes clean)" $((c0 + 1))

R=$(probe close-notify --client-first --path /hello.txt)
expect "a client's close_notify is answered with close_notify" "$(kv "$R" server_replied)" 1
expect "...and the server then closes the socket" "$(kv "$R" server_fin)" 1

# HTTP/1.0 without keep-alive
O=$(printf 'GET /hello.txt HTTP/1.0\r\n\r\n' | timeout 10 openssl s_client -connect "127.0.0.1:$PORT" -servername localhost -CAfile "$CERTS/ca.crt" -ign_eof -msg 2>&1)
expect_match "HTTP/1.0 response is followed by close_notify" "$O" "<<< TLS 1.3, Alert \[length 0002\], warning close_notify"

# A client that never answers our close_notify: the worker does not wait for it, and the
# socket is closed after shutdown_s (2 s here).
t0=$(closes timeout)
a0=$(wc -l <"$T/access.log")
probe close-notify --no-reply --linger-ms 4000 --path /hello.txt >"$T/noreply.out" &
NR=$!
# that client is answered (its access-log line), so the server waits for its close_notify now,
# however long it took to start
answered() { [ "$(wc -l <"$T/access.log")" -gt "$a0" ]; }
wait_until 5 answered
start=$(date +%s%N)
expect "a request during another client's shutdown wait is answered" "$(tcurl -o /dev/null -w '%{http_code}' "$BASE/hello.txt")" 200
ms=$((($(date +%s%N) - start) / 1000000))
if [ "$ms" -lt $((1000 * MULT)) ]; then ok "...promptly (${ms} ms): the worker is not blocked"; else not_ok "...took ${ms} ms"; fi
wait $NR
R=$(cat "$T/noreply.out")
fin=$(kv "$R" server_fin_ms)
if [ "$fin" -ge 1500 ] && [ "$fin" -le $((3500 * MULT)) ]; then ok "the server closed ${fin} ms after close_notify (shutdown_s=2)"; else not_ok "server_fin_ms=$fin, expected about 2000 ($R)"; fi
expect "...and counted it as a shutdown timeout" "$(closes timeout)" $((t0 + 1))

# peer EOF without close_notify in the middle of keep-alive: possible truncation
e0=$(closes peer_eof)
probe vanish --stage request >/dev/null
wait_until 3 closes_at_least peer_eof $((e0 + 1))
expect "a client that closes without close_notify counts as peer_eof" "$(closes peer_eof)" $((e0 + 1))

# keep-alive idle expiry: the server sends close_notify
R=$(probe close-notify --keepalive-then-close --path /hello.txt --timeout-ms 6000)
expect "an idle keep-alive connection gets close_notify at keepalive_s" "$(kv "$R" end)" close_notify
after=$(kv "$R" end_after_ms)
if [ "$after" -ge 2500 ] && [ "$after" -le $((4500 * MULT)) ]; then ok "...after ${after} ms (keepalive_s=3)"; else not_ok "...after ${after} ms (keepalive_s=3)"; fi

# shutdown_s = 0: close_notify is sent and the socket closed at once
stop_server
WORKERS=1 LOG_LEVEL=debug TIMEOUTS='"shutdown_s": 0' start_server || exit 1
R=$(probe close-notify --no-reply --linger-ms 2000 --path /hello.txt)
expect "shutdown_s=0 still sends close_notify" "$(kv "$R" end)" close_notify
fin=$(kv "$R" server_fin_ms)
if [ "$fin" -ge 0 ] && [ "$fin" -le $((500 * MULT)) ]; then ok "shutdown_s=0 closes at once (${fin} ms)"; else not_ok "shutdown_s=0: server_fin_ms=$fin"; fi
stop_server
expect "server exits 0" "$?" 0
check_server_log

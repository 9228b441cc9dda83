#!/usr/bin/env bash
# SIGTERM and SIGINT: stop accepting, finish responses in flight, send close_notify to idle
# connections, exit 0 within a few seconds. SIGPIPE never kills the process.
. "$(dirname "$0")/lib.sh"
make_site
head -c $((6 * 1024 * 1024)) /dev/urandom >"$T/www/six.bin"
want=$(sha256sum <"$T/www/six.bin" | cut -d' ' -f1)

for sig in TERM INT; do
    TIMEOUTS='"shutdown_s": 1, "keepalive_s": 60' start_server || exit 1
    fifo=$T/hold.$sig
    mkfifo "$fifo"
    "$TS_PROBE" hold --port "$PORT" --cafile "$CERTS/ca.crt" --count 50 --seconds 30 --ignore-stdin >"$fifo" 2>/dev/null &
    HOLD=$!
    PIDS+=("$HOLD")
    exec 3<"$fifo"
    read -r -t 30 line <&3
    expect "SIG$sig: 50 idle connections open" "$line" "established=50 failed=0"
    # a download in flight at 2 MB/s takes about 3 s: the signal once its body is coming, however
    # long curl took to start
    tcurl --limit-rate 2M -o "$T/inflight.$sig.bin" "$BASE/six.bin" &
    DL=$!
    check "SIG$sig: a download is under way" wait_until 10 test -s "$T/inflight.$sig.bin"
    start=$(date +%s%N)
    stop_server "$sig"
    rc=$?
    ms=$((($(date +%s%N) - start) / 1000000))
    expect "SIG$sig: exit status 0" "$rc" 0
    if [ "$ms" -lt $((8000 * MULT)) ]; then ok "SIG$sig: stopped within ${ms} ms"; else not_ok "SIG$sig: took ${ms} ms"; fi
    wait "$DL"
    expect "SIG$sig: the response in flight was finished" "$(sha256sum <"$T/inflight.$sig.bin" | cut -d' ' -f1)" "$want"
    R=$(timeout 30 cat <&3)
    exec 3<&-
    wait "$HOLD"
    expect_match "SIG$sig: idle connections were closed by the server" "$R" "closed_by_server=50"
    expect_match "SIG$sig: ...each with close_notify" "$R" "close_notify=50"
    if port_in_use "$PORT"; then not_ok "SIG$sig: port still accepting"; else ok "SIG$sig: no longer accepting"; fi
    expect_match "SIG$sig: the log says why it stopped" "$(cat "$T/error.log")" "SIG$sig received: stopping"
    check_server_log
done

# SIGPIPE: clients that reset the connection mid-response do not kill the server
head -c $((8 * 1024 * 1024)) /dev/urandom >"$T/www/eight.bin"
start_server || exit 1
for i in $(seq 1 20); do probe vanish --stage response --rst --path /eight.bin >/dev/null; done
for i in $(seq 1 20); do probe vanish --stage response --path /eight.bin >/dev/null; done
if kill -0 "$SERVER_PID" 2>/dev/null; then ok "server survives 40 clients vanishing mid-response"; else not_ok "server died"; fi
expect "...and still serves" "$(tcurl "$BASE/hello.txt")" "hello"
stop_server
expect "server exits 0" "$?" 0
check_server_log

# timeouts.drain_s: a slow download that outlives shutdown_s (and the few seconds beyond it
# that once were the limit) still finishes within drain_s; one that outlives drain_s is cut
# without close_notify, so its client sees the truncation. The files are much larger than what
# the kernel buffers for a slow reader (a few MB), so the server is still sending at the end.
truncate -s $((16 * 1024 * 1024)) "$T/www/sixteen.bin"
truncate -s $((64 * 1024 * 1024)) "$T/www/sixtyfour.bin"
TIMEOUTS='"shutdown_s": 1, "drain_s": 120' start_server || exit 1
tcurl --limit-rate 1M -o "$T/drain.long" "$BASE/sixteen.bin" 2>"$T/drain.err" &
DL=$!
check "drain_s 120: a download is under way" wait_until 10 test -s "$T/drain.long"
STOP_WAIT=$((400 * MULT)) stop_server
expect "drain_s 120: exit status 0" "$?" 0
wait "$DL"
expect "drain_s 120: a 16 s download in flight at SIGTERM ends cleanly" "$?" 0
expect "...and whole" "$(stat -c %s "$T/drain.long")" $((16 * 1024 * 1024))
check_server_log

TIMEOUTS='"shutdown_s": 1, "drain_s": 1' start_server || exit 1
tcurl --limit-rate 300K -o "$T/drain.cut" "$BASE/sixtyfour.bin" 2>"$T/drain.err" &
DL=$!
check "drain_s 1: a download is under way" wait_until 10 test -s "$T/drain.cut"
stop_server
expect "drain_s 1: exit status 0" "$?" 0
wait "$DL"
rc=$?
sed 's/^/# /' "$T/drain.err"
if [ $rc -ne 0 ]; then ok "drain_s 1: the client of a cut download sees an error (curl $rc)"; else
    not_ok "drain_s 1: the client saw a clean end"; fi
if [ "$(stat -c %s "$T/drain.cut")" -lt $((64 * 1024 * 1024)) ]; then ok "...and a short body"; else
    not_ok "...and a short body (got it all)"; fi
check_server_log

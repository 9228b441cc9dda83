#!/usr/bin/env bash
# Clients that vanish at any stage, with FIN or RST, leave nothing behind: the server keeps
# serving and its descriptor count returns to where it was.
. "$(dirname "$0")/lib.sh"
make_site
head -c $((4 * 1024 * 1024)) /dev/urandom >"$T/www/four.bin"
LOG_LEVEL=debug TIMEOUTS='"shutdown_s": 1, "handshake_s": 2, "request_header_s": 2' start_server || exit 1
# warm both workers' open-file caches (see 87-soak) before taking the baseline
for p in hello.txt hello.txt four.bin four.bin; do tcurl -I -o /dev/null "$BASE/$p"; done
fd0=$(fd_count "$SERVER_PID")
for stage in connect handshake request response; do
    for rst in "" --rst; do
        for i in 1 2 3 4 5; do probe vanish --stage $stage $rst --path /four.bin >/dev/null; done
        expect "serves after clients vanished at $stage ${rst:-(FIN)}" "$(tcurl "$BASE/hello.txt")" "hello"
    done
done
# a silent client that never sends a ClientHello is cut at handshake_s
"$TS_PROBE" hold --port "$PORT" --plain --count 20 --seconds 10 --ignore-stdin >"$T/silent.out" 2>&1 &
H=$!
PIDS+=("$H")
wait "$H"
expect_match "silent TCP clients are closed by the server at handshake_s" "$(cat "$T/silent.out")" "closed_by_server=20"
for _ in $(seq 1 50); do [ "$(fd_count "$SERVER_PID")" -le "$fd0" ] && break; sleep 0.1; done
expect "descriptor count back to its baseline ($fd0)" "$(fd_count "$SERVER_PID")" "$fd0"
hs=$(grep -c 'TLS handshake failed' "$T/error.log")
echo "# $hs handshake failures logged at info level"
stop_server
expect "server exits 0" "$?" 0
check_server_log

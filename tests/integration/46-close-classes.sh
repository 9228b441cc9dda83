#!/usr/bin/env bash
# Every way a client can end a connection lands in exactly one close class of /status, as the
# README's "Closing connections" table says, and a handshake that does not finish is also
# counted once in tls.handshakes.failed with one reason, logged at debug (every reason,
# peer_closed included) and summed up in the info line at stop.
. "$(dirname "$0")/lib.sh"
make_site
LOG_LEVEL=debug TIMEOUTS='"shutdown_s": 1, "handshake_s": 2' start_server || exit 1

# status FILE: /status once no connection but the one asking is open (bounded wait)
status() {
    for _ in $(seq 1 $((50 * MULT))); do
        tcurl -o "$1" "$BASE/status"
        [ "$(jq .connections.active "$1")" = 1 ] && return 0
        sleep 0.1
    done
}
# d FIELD: how much FIELD grew from $T/a.json to $T/b.json
d() { echo $(($(jq "$1" "$T/b.json") - $(jq "$1" "$T/a.json"))); }
# the closes other than the status requests' (which are clean), and the handshake outcomes
closes() { echo "peer_eof=$(d .connections.closed_peer_eof) timeout=$(d .connections.closed_timeout) error=$(d .connections.closed_error)"; }
handshakes() { echo "failed=$(d .tls.handshakes.failed) $1=$(d ".tls.handshakes.failure_reasons.$1")"; }
lines() { grep -c "$1" "$T/error.log"; }

# send HEX: a TCP client that sends these bytes, reads until the server closes
# (bounded) and closes
send() {
    timeout $((10 * MULT)) python3 -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(bytes.fromhex(sys.argv[2]))
while s.recv(4096):
    pass' "$PORT" "$1"
}
# case NAME CLASS EXPECTED-CLOSES EXPECTED-HANDSHAKES REASON COMMAND...: runs COMMAND once
# between two /status reads and checks the deltas and the debug lines it made
case_() {
    local name=$1 class=$2 want_closes=$3 want_hs=$4 reason=$5
    shift 5
    status "$T/a.json"
    local l0 c0
    l0=$(lines "TLS handshake failed ($reason)")
    c0=$(lines "closed ($class)")
    "$@" >/dev/null 2>&1
    status "$T/b.json"
    expect "$name: close class" "$(closes)" "$want_closes"
    if [ "$reason" = - ]; then
        expect "$name: no failed handshake" "$(d .tls.handshakes.failed)" 0
    else
        expect "$name: failed handshake and reason" "$(handshakes "$reason")" "$want_hs"
        expect "$name: one debug line with the reason" "$(($(lines "TLS handshake failed ($reason)") - l0))" 1
    fi
    # the status requests close clean too: at least one more line for that class
    if [ "$class" = clean ]; then
        expect "$name: a debug line with the close class" "$(($(lines "closed ($class)") - c0 >= 1))" 1
    else
        expect "$name: one debug line with the close class" "$(($(lines "closed ($class)") - c0))" 1
    fi
}

EOF_=("peer_eof=1 timeout=0 error=0")
# a port check sends nothing: no handshake began, so none failed
case_ "TCP connect, then FIN" peer_eof "$EOF_" - - probe vanish --stage connect
case_ "TCP connect, then RST" peer_eof "$EOF_" - - probe vanish --stage connect --rst
case_ "half a ClientHello, then FIN" peer_eof "$EOF_" "failed=1 peer_closed=1" peer_closed \
    probe vanish --stage handshake
case_ "half a ClientHello, then RST" peer_eof "$EOF_" "failed=1 peer_closed=1" peer_closed \
    probe vanish --stage handshake --rst
case_ "a whole ClientHello, then FIN" peer_eof "$EOF_" "failed=1 peer_closed=1" peer_closed \
    probe vanish --stage handshake --full-hello
# the RST lands while the server answers the ClientHello: its write fails, not a read
case_ "a whole ClientHello, then RST" peer_eof "$EOF_" "failed=1 peer_closed=1" peer_closed \
    probe vanish --stage handshake --full-hello --rst
case_ "garbage instead of a ClientHello" error "peer_eof=0 timeout=0 error=1" "failed=1 bad_message=1" bad_message \
    send 1603010008ffffffffffffffff
case_ "plain HTTP on the TLS port" error "peer_eof=0 timeout=0 error=1" "failed=1 http_on_tls_port=1" http_on_tls_port \
    timeout 5 curl -s "http://127.0.0.1:$PORT/"
case_ "a PROXY protocol header on a listener without proxy_protocol" error "peer_eof=0 timeout=0 error=1" "failed=1 proxy_protocol_header=1" proxy_protocol_header \
    send 50524f58592054435034203132372e302e302e31203132372e302e302e31203131313131203434330d0a16030100
case_ "a PROXY protocol v2 header on a listener without proxy_protocol" error "peer_eof=0 timeout=0 error=1" "failed=1 proxy_protocol_header=1" proxy_protocol_header \
    send 0d0a0d0a000d0a515549540a2011000c7f0000017f000001d6d801bb16030100
case_ "silence until handshake_s" timeout "peer_eof=0 timeout=1 error=0" "failed=1 timeout=1" timeout \
    "$TS_PROBE" hold --port "$PORT" --plain --count 1 --seconds $((4 * MULT)) --ignore-stdin
case_ "a request, its response, then FIN without close_notify" peer_eof "$EOF_" - - \
    probe vanish --stage response --path /hello.txt
case_ "half a request, then RST" peer_eof "$EOF_" - - \
    probe vanish --stage request --rst
case_ "a request, then close_notify both ways" clean "peer_eof=0 timeout=0 error=0" - - \
    probe close-notify --path /hello.txt
expect "...counted as clean" "$(($(d .connections.closed_clean) >= 2))" 1

# every failed handshake above is in the summary line at stop, peer_closed included, and the
# line's counts are /status's; every connection but the one asking was closed in one class
tcurl -o "$T/end.json" "$BASE/status"
expect "accepted = closed in some class + the status connection" \
    "$(jq '.connections.accepted - .connections.closed_clean - .connections.closed_peer_eof - .connections.closed_timeout - .connections.closed_error' "$T/end.json")" 1
expect "failed handshakes = the sum of their reasons" \
    "$(jq '.tls.handshakes.failed - ([.tls.handshakes.failure_reasons[]] | add)' "$T/end.json")" 0
want=$(jq -r '.tls.handshakes.failure_reasons | to_entries[] | select(.value > 0) | "\(.key) \(.value)"' "$T/end.json" | sort)
stop_server
expect "server exits 0" "$?" 0
got=$(grep 'TLS handshakes failed in the last' "$T/error.log" | sed 's/.*(\(.*\)); .*/\1/' |
    tr ',' '\n' | awk 'NF == 2 { n[$1] += $2 } END { for (k in n) print k, n[k] }' | sort)
expect "the summary lines name every reason /status counts" "$got" "$want"
expect_match "...peer_closed among them" "$got" "^peer_closed 4$"
check_server_log

# a handshake still under way when drain_s ends the shutdown is cut: a failed handshake by
# timeout, in the summary at stop
LOG_LEVEL=debug TIMEOUTS='"shutdown_s": 1, "handshake_s": 60, "drain_s": 1' start_server || exit 1
"$TS_PROBE" hold --port "$PORT" --plain --count 1 --seconds $((20 * MULT)) --ignore-stdin >"$T/hold.out" 2>&1 &
H=$!
PIDS+=("$H")
hs() { [ "$(tcurl "$BASE/status" | jq .connections.handshaking)" = 1 ]; }
wait_until 5 hs
expect "a silent client is in the handshake" "$(tcurl "$BASE/status" | jq .connections.handshaking)" 1
stop_server
expect "server exits 0" "$?" 0
wait "$H"
expect_match "...and is cut by the server" "$(cat "$T/hold.out")" "closed_by_server=1"
expect_match "drain_s cut it: a failed handshake by timeout" "$(cat "$T/error.log")" \
    "TLS handshakes failed in the last [0-9]+ s: 1 \(timeout 1\)"
expect "...closed as a timeout" "$(grep -c 'closed (timeout) after 0 requests' "$T/error.log")" 1
check_server_log

#!/usr/bin/env bash
# PROXY protocol listeners: v1 and v2 headers (IPv4, IPv6, LOCAL, UNKNOWN) replace the client
# address in the access log and for status.allow; a header in pieces and a ClientHello in the
# header's own write both work; no header, garbage, a source not in proxy_protocol_from, a
# half header that stops, and a half header then FIN are closed and counted; configuration
# errors name the key; and, when haproxy is installed, a real haproxy with send-proxy-v2.
. "$(dirname "$0")/lib.sh"
make_site
PP() { timeout $((60 * MULT)) /usr/bin/python3 "$(dirname "$0")/../tools/ppclient.py" "$@"; }

# --- configuration errors name the key and the entry
cfg_out() {
    printf '%s\n' "$1" >"$T/bad.json"
    OUT=$(oneshot "$TS_BIN" --config "$T/bad.json" --check-config)
    RC=$?
}
base="\"root\": \"$T/www\", \"tls\": {\"certificate\": \"$CERTS/server.crt\", \"key\": \"$CERTS/server.key\"}"
bad_listen() { # description listen-json expected
    cfg_out "{\"listen\": $2, $base}"
    if [ "$RC" = 2 ] && printf '%s' "$OUT" | grep -qF -- "$3"; then ok "config: $1 -> exit 2 naming $3"; else
        not_ok "config: $1 (exit $RC, message: $OUT)"
    fi
}
P0=$(pick_port)
bad_listen "bad CIDR" "[\"127.0.0.1:$P0\", {\"address\": \"127.0.0.1:$P0\", \"proxy_protocol\": true, \"proxy_protocol_from\": [\"10.0.0.0/8\", \"10.0.0.300\"]}]" 'listen[1].proxy_protocol_from[1]: "10.0.0.300" is not'
bad_listen "IPv4 prefix too long" "{\"address\": \"127.0.0.1:$P0\", \"proxy_protocol\": true, \"proxy_protocol_from\": [\"10.0.0.0/33\"]}" 'listen.proxy_protocol_from[0]: bad prefix length in "10.0.0.0/33" (at most /32)'
bad_listen "IPv6 prefix too long" "[{\"address\": \"127.0.0.1:$P0\", \"proxy_protocol\": true, \"proxy_protocol_from\": [\"::1/129\"]}]" 'listen[0].proxy_protocol_from[0]: bad prefix length in "::1/129" (at most /128)'
bad_listen "proxy_protocol not a boolean" "[{\"address\": \"127.0.0.1:$P0\", \"proxy_protocol\": \"yes\"}]" "listen[0].proxy_protocol: must be true or false"
bad_listen "unknown key" "[{\"address\": \"127.0.0.1:$P0\", \"proxy_protocl\": true}]" "listen[0].proxy_protocl: unknown key"
bad_listen "no address" "[{\"proxy_protocol\": true}]" "listen[0].address: required"
bad_listen "from without proxy_protocol" "[{\"address\": \"127.0.0.1:$P0\", \"proxy_protocol_from\": [\"::1\"]}]" "listen[0].proxy_protocol_from: only with"
bad_listen "empty from" "[{\"address\": \"127.0.0.1:$P0\", \"proxy_protocol\": true, \"proxy_protocol_from\": []}]" "listen[0].proxy_protocol_from: must be a non-empty list"
bad_listen "from entry not a string" "[{\"address\": \"127.0.0.1:$P0\", \"proxy_protocol\": true, \"proxy_protocol_from\": [10]}]" "listen[0].proxy_protocol_from[0]: must be a string"
bad_listen "entry neither string nor object" "[\"127.0.0.1:$P0\", 5]" "listen: every entry must be a string \"ADDR:PORT\" or an object (listen[1])"
bad_listen "bad address in an object" "[{\"address\": \"nohost\", \"proxy_protocol\": true}]" "listen:"
cfg_out "{\"listen\": [{\"address\": \"127.0.0.1:$P0\", \"proxy_protocol\": false}, {\"address\": \"[::1]:$P0\", \"proxy_protocol\": true, \"proxy_protocol_from\": [\"10.0.0.0/8\", \"::1/128\", \"127.0.0.1\"]}], $base}"
expect "config: listen objects with and without the PROXY protocol are valid" "$RC" 0

# --- one server: $PORT plain TLS (for /status), $PP_PORT PROXY protocol from loopback (the
# default), $NA_PORT PROXY protocol from 10.0.0.0/8 only (127.0.0.1 is not allowed there)
start_pp() {
    local attempt
    for attempt in 1 2 3; do
        PORT=$(pick_port) && PP_PORT=$(pick_port) && NA_PORT=$(pick_port) || return 1
        [ "$PORT" != "$PP_PORT" ] && [ "$PP_PORT" != "$NA_PORT" ] && [ "$PORT" != "$NA_PORT" ] || continue
        LISTEN=X write_config
        sed -i "s|\"listen\": \"X\"|\"listen\": [\"127.0.0.1:$PORT\", {\"address\": \"127.0.0.1:$PP_PORT\", \"proxy_protocol\": true}, {\"address\": \"127.0.0.1:$NA_PORT\", \"proxy_protocol\": true, \"proxy_protocol_from\": [\"10.0.0.0/8\", \"::1\"]}]|" "$T/tessera.json"
        spawn_server "$TS_BIN" --config "$T/tessera.json" >"$T/spawn.out" && return 0
        if [ -n "$SERVER_PID" ] || ! grep -q "Address already in use" "$T/error.log"; then break; fi
        LOG_DONE[SERVER_IDX]=retried
    done
    cat "$T/spawn.out"
    return 1
}
TOP_EXTRA='"status": {"allow": ["127.0.0.1", "2001:db8::/32"]},' LOG_LEVEL=debug \
    TIMEOUTS='"shutdown_s": 1, "handshake_s": 2' start_pp || exit 1
expect "the plain listener still serves" "$(tcurl "$BASE/hello.txt")" hello
st() { tcurl -s "$BASE/status" | jq -r ".proxy_protocol.$1"; }
# log_has MARK ADDRESS: the access-log line of the request for /hello.txt?MARK starts with ADDRESS
log_has() { grep -aF "?$1 " "$T/access.log" | grep -q "^$2 - "; }
serves() { # description expected-address mark client-args...
    local d=$1 addr=$2 mark=$3
    shift 3
    local out
    out=$(PP "$PP_PORT" "$CERTS/ca.crt" "$@" --path "/hello.txt?$mark")
    if printf '%s' "$out" | head -1 | grep -q "200" && printf '%s' "$out" | grep -qx hello; then
        ok "$d: served"
    else
        not_ok "$d: not served: $out"
    fi
    if wait_until 5 log_has "$mark" "$addr"; then ok "$d: access log shows $addr"; else
        not_ok "$d: access log: $(grep -aF "?$mark " "$T/access.log")"
    fi
}
serves "v1 TCP4" 203.0.113.9 v1tcp4 v1 "PROXY TCP4 203.0.113.9 127.0.0.1 51000 $PP_PORT"
serves "v1 TCP6" 2001:db8::6 v1tcp6 v1 "PROXY TCP6 2001:db8::6 ::1 51000 443"
serves "v1 TCP6 with an IPv4-mapped address" 192.0.2.44 v1mapped v1 "PROXY TCP6 ::ffff:192.0.2.44 ::1 51000 443"
serves "v1 UNKNOWN keeps the socket's address" 127.0.0.1 v1unknown v1 "PROXY UNKNOWN"
serves "v2 PROXY IPv4" 198.51.100.7 v2inet v2 proxy inet 198.51.100.7 127.0.0.1
serves "v2 PROXY IPv6" 2001:db8:1::5 v2inet6 v2 proxy inet6 2001:db8:1::5 ::1
serves "v2 LOCAL keeps the socket's address" 127.0.0.1 v2local v2 local inet 10.9.9.9 127.0.0.1
serves "v2 PROXY UNSPEC keeps the socket's address" 127.0.0.1 v2unspec v2 proxy unspec
serves "v1 header in 5 writes, ClientHello separate" 203.0.113.10 v1split v1 "PROXY TCP4 203.0.113.10 127.0.0.1 51000 443" --split 5 --pause 0.3 --separate
serves "v2 header in 7 writes, ClientHello in the last" 198.51.100.8 v2split v2 proxy inet 198.51.100.8 127.0.0.1 --split 7 --pause 0.3
serves "v2 header in one byte writes" 198.51.100.9 v2bytes v2 proxy inet 198.51.100.9 127.0.0.1 --split 28 --pause 0.05 --separate
expect "proxy_protocol.accepted counts the 11 headers" "$(st accepted)" 11

# --- status.allow sees the header's address
out=$(PP "$PP_PORT" "$CERTS/ca.crt" v1 "PROXY TCP4 10.1.2.3 127.0.0.1 51000 443" --path /status)
expect_match "status refused to 10.1.2.3 named by the header" "$(printf '%s' "$out" | head -1)" " 403 "
out=$(PP "$PP_PORT" "$CERTS/ca.crt" v2 proxy inet6 2001:db8::77 ::1 --path /status)
expect_match "status open to 2001:db8::77 named by the header (allowed 2001:db8::/32)" "$(printf '%s' "$out" | head -1)" " 200 "
out=$(PP "$PP_PORT" "$CERTS/ca.crt" v2 proxy inet 192.0.2.1 127.0.0.1 --path /status)
expect_match "status refused to 192.0.2.1 though the socket is 127.0.0.1" "$(printf '%s' "$out" | head -1)" " 403 "

# --- refused: counted by reason
rej() { st "rejected.$1"; }
m0=$(rej malformed) n0=$(rej not_allowed) t0=$(rej timeout)
out=$(PP "$PP_PORT" "$CERTS/ca.crt" none --fin)
expect_match "a port check (connect, FIN, no byte) is closed" "$out" "^closed after"
out=$(PP "$PP_PORT" "$CERTS/ca.crt" none)
expect_match "a direct ClientHello (no header) is closed" "$out" "^failed"
out=$(PP "$PP_PORT" "$CERTS/ca.crt" raw "$(printf 'hello world\r\n' | od -An -tx1 | tr -d ' \n')")
expect_match "garbage is closed" "$out" "^failed"
out=$(PP "$PP_PORT" "$CERTS/ca.crt" v1 "PROXY TCP4 203.0.113.9 127.0.0.1 51000 99999")
expect_match "a bad port in a v1 header is closed" "$out" "^failed"
out=$(PP "$PP_PORT" "$CERTS/ca.crt" raw "0d0a0d0a000d0a515549540a211200000c0a0102037f0000010001")
expect_match "a v2 UDP header is closed" "$out" "^failed"
out=$(PP "$PP_PORT" "$CERTS/ca.crt" v1 "PROXY TCP4 203.0.113.9 127.0.0.1 51000 443" --fin)
expect_match "half a header then FIN is closed at once" "$out" "^closed after"
wait_until 5 test "$(rej malformed)" -ge $((m0 + 5))
expect "rejected.malformed counts the 5, not the port check" "$(rej malformed)" $((m0 + 5))
out=$(PP "$NA_PORT" "$CERTS/ca.crt" v1 "PROXY TCP4 203.0.113.9 127.0.0.1 51000 443")
expect_match "a header from 127.0.0.1 where only 10.0.0.0/8 and ::1 may send one is closed" "$out" "^failed"
wait_until 5 test "$(rej not_allowed)" -ge $((n0 + 1))
expect "rejected.not_allowed counts it" "$(rej not_allowed)" $((n0 + 1))
expect "and it was not counted malformed" "$(rej malformed)" $((m0 + 5))
out=$(PP "$PP_PORT" "$CERTS/ca.crt" v2 proxy inet 198.51.100.7 127.0.0.1 --hold $((15 * MULT)))
expect_match "half a header that then stops is closed at timeouts.handshake_s" "$out" "^closed after"
wait_until 5 test "$(rej timeout)" -ge $((t0 + 1))
expect "rejected.timeout counts it" "$(rej timeout)" $((t0 + 1))
expect "no refused header was counted as accepted" "$(st accepted)" 14
expect_match "a refused header is logged with its reason" "$(cat "$T/error.log")" "PROXY protocol header refused \(malformed\): no PROXY protocol signature"
expect_match "the timeout is logged" "$(cat "$T/error.log")" "PROXY protocol header refused \(timeout\)"
M=$(tcurl -s "$BASE/metrics")
expect_match "metrics: accepted" "$M" "^tessera_proxy_protocol_accepted_total 14$"
expect_match "metrics: rejected by reason" "$M" "tessera_proxy_protocol_rejected_total\\{reason=\"not_allowed\"\\} $((n0 + 1))"
# nothing was lost behind the header: no handshake failed on this listener's good clients
expect "no TLS handshake failed after an accepted header" "$(tcurl -s "$BASE/status" | jq .tls.handshakes.failed)" 0

# --- through a real haproxy (mode tcp, send-proxy-v2): the log shows the real client
if command -v haproxy >/dev/null; then
    HP=$(pick_port)
    cat >"$T/haproxy.cfg" <<CFG
global
    log stderr format short local0 warning
defaults
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend fe
    bind 127.0.0.1:$HP
    default_backend be
backend be
    server s1 127.0.0.1:$PP_PORT send-proxy-v2 check check-send-proxy inter 200ms
CFG
    haproxy -f "$T/haproxy.cfg" -db >"$T/haproxy.log" 2>&1 &
    HAPID=$!
    PIDS+=("$HAPID")
    for _ in $(seq 1 $((50 * MULT))); do port_in_use "$HP" && break; sleep 0.1; done
    out=$(curl -sS --http1.1 --max-time $((20 * MULT)) --cacert "$CERTS/ca.crt" \
        --resolve "localhost:$HP:127.0.0.1" "https://localhost:$HP/hello.txt?viahaproxy")
    expect "haproxy send-proxy-v2: served" "$out" hello
    if wait_until 5 log_has viahaproxy 127.0.0.1; then ok "haproxy: the access log shows the real client 127.0.0.1"; else
        not_ok "haproxy: access log: $(grep -aF '?viahaproxy ' "$T/access.log")"
    fi
    out=$(curl -sS --http2 --max-time $((20 * MULT)) --cacert "$CERTS/ca.crt" \
        --resolve "localhost:$HP:127.0.0.1" "https://localhost:$HP/hello.txt?viahaproxyh2")
    expect "haproxy send-proxy-v2: HTTP/2 served" "$out" hello
    # its health checks (check-send-proxy: a LOCAL header, then close) fail no handshake
    a0=$(st accepted)
    wait_until 10 test "$(st accepted)" -ge $((a0 + 3))
    check "haproxy's health checks pass the header" test "$(st accepted)" -ge $((a0 + 3))
    expect "haproxy's health checks fail no TLS handshake" "$(tcurl -s "$BASE/status" | jq .tls.handshakes.failed)" 0
    expect "haproxy saw the server up" "$(grep -c 'is DOWN' "$T/haproxy.log")" 0
    kill -TERM "$HAPID" 2>/dev/null
    wait "$HAPID" 2>/dev/null
else
    ok "# SKIP haproxy is not installed (.ci/deps test installs it)"
fi

stop_server
check_server_log

# --listen replaces a listen object with proxy_protocol: said at start, not silently dropped
PORT=$(pick_port)
P2=$(pick_port)
LISTEN_OBJ=1 write_config
sed -i "s|\"listen\": \"[^\"]*\"|\"listen\": [{\"address\": \"127.0.0.1:$P2\", \"proxy_protocol\": true}]|" "$T/tessera.json"
spawn_server "$TS_BIN" --config "$T/tessera.json" --listen "127.0.0.1:$PORT" || exit 1
expect_match "--listen over a PROXY listener: a warning says what is dropped" "$(cat "$T/error.log")" \
    "\\[warn\\] --listen 127\\.0\\.0\\.1:$PORT replaces listen, and with it the PROXY protocol of 1 of its entries"
stop_server
check_server_log
exit $((FAILS > 0))

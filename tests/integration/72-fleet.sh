#!/usr/bin/env bash
# A fleet: three tessera sharing one tls.ticket_key_file behind one haproxy (mode tcp,
# roundrobin, send-proxy-v2). Sessions resume on any instance (TLS 1.3 and TLS 1.2 tickets),
# every instance resumes handshakes, the access logs show the real client. Key rotation: a
# key prepended to the file and every instance reloaded (SIGHUP): tickets issued before still
# resume, new ones are under the new key. TLS 1.2 session IDs stay per instance (about 1/3
# resume through haproxy when tickets are off).
. "$(dirname "$0")/lib.sh"
# PROXY headers, ticket-key files and reloads run under the sanitizers in 65-proxy-protocol,
# 57-ticket-keys and 19-reload; here three instances and haproxy would only take longer
case $TS_BUILD in
*asan* | *tsan*) ok "the fleet runs against the release build only # SKIP"; exit 0 ;;
esac
make_site
if ! command -v haproxy >/dev/null; then
    ok "# SKIP haproxy is not installed (.ci/deps test installs it)"
    exit 0
fi
RL=$TS_BUILD/resume-load
[ -x "$RL" ] || RL=$TS_TOP/build/resume-load # built by make all
[ -x "$RL" ] || { not_ok "no resume-load: make all builds it"; exit 1; }

# six distinct ports: the PROXY protocol listener and a direct one (for /status) per instance
ports=()
while [ ${#ports[@]} -lt 7 ]; do
    p=$(pick_port) || exit 1
    case " ${ports[*]} " in *" $p "*) ;; *) ports+=("$p") ;; esac
done
PP=("${ports[@]:0:3}") DIRECT=("${ports[@]:3:3}") HP=${ports[6]}
openssl rand 80 >"$T/k1"
cp "$T/k1" "$T/ticket.key"

# start_instance I [TLS_JSON_EXTRA]: instance I on PP[I] (PROXY protocol) and DIRECT[I]
start_instance() {
    cat >"$T/tessera.$1.json" <<JSON
{
    "listen": [ { "address": "127.0.0.1:${PP[$1]}", "proxy_protocol": true },
                "127.0.0.1:${DIRECT[$1]}" ],
    "root": "$T/www",
    "workers": 2,
    "tls": { "certificate": "$CERTS/server.crt", "key": "$CERTS/server.key",
             "ticket_key_file": "$T/ticket.key" ${2:-} },
    "status": { "allow": ["127.0.0.1"] },
    "timeouts": { "shutdown_s": 1, "drain_s": 5 },
    "log": { "access": "$T/access.$1.log", "error": "-", "level": "info" }
}
JSON
    PORT=${DIRECT[$1]}
    spawn_server "$TS_BIN" --config "$T/tessera.$1.json" || return 1
    SPID[$1]=$SERVER_PID SIDX[$1]=$SERVER_IDX
}
stop_instance() {
    SERVER_PID=${SPID[$1]} SERVER_IDX=${SIDX[$1]}
    stop_server
    expect "instance $1 exits 0" "$?" 0
}
SPID=() SIDX=()
for i in 0 1 2; do start_instance "$i" || exit 1; done

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
    default_backend fleet
backend fleet
    balance roundrobin
    server t0 127.0.0.1:${PP[0]} send-proxy-v2 check check-send-proxy inter 500ms
    server t1 127.0.0.1:${PP[1]} send-proxy-v2 check check-send-proxy inter 500ms
    server t2 127.0.0.1:${PP[2]} send-proxy-v2 check check-send-proxy inter 500ms
CFG
haproxy -f "$T/haproxy.cfg" -db >"$T/haproxy.log" 2>&1 &
HAPID=$!
PIDS+=("$HAPID")
for _ in $(seq 1 $((50 * MULT))); do port_in_use "$HP" && break; sleep 0.1; done

# status I FIELD: a number from instance I's /status
status() {
    curl -sS --max-time $((20 * MULT)) --cacert "$CERTS/ca.crt" \
        --resolve "localhost:${DIRECT[$1]}:127.0.0.1" "https://localhost:${DIRECT[$1]}/status" | jq -r "$2"
}
# load VERSION: resume-load through haproxy; sets LINE and RATIO, the resumed fraction of the
# handshakes that offered a session (the first of each of the C slots cannot)
C=4
load() {
    LINE=$(timeout $((60 * MULT)) "$RL" --port "$HP" --cafile "$CERTS/ca.crt" --"$1" \
        --path /hello.txt --concurrency $C --duration $((3 * MULT)) --max-conns 3000)
    echo "# resume-load --$1 via haproxy: $LINE"
    RATIO=$(awk -v l="$LINE" -v c=$C 'BEGIN { n = split(l, a, " "); for (i = 1; i <= n; i++) {
        split(a[i], kv, "="); v[kv[1]] = kv[2] } printf "%.4f", v["resumed"] / (v["conns"] - c) }')
    echo "# resumed / offered = $RATIO"
}
at_least() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a >= b) }'; }

load tls13
check "TLS 1.3: at least 99% of the offered tickets resume across the fleet" at_least "$RATIO" 0.99
expect "TLS 1.3: no errors" "$(kv "$LINE" errors)" 0
load tls12
check "TLS 1.2: at least 99% of the offered tickets resume across the fleet" at_least "$RATIO" 0.99
expect "TLS 1.2: no errors" "$(kv "$LINE" errors)" 0
for i in 0 1 2; do
    check "instance $i resumed TLS 1.3 tickets" test "$(status "$i" .tls.resumptions.tls13_ticket)" -gt 0
    check "instance $i resumed TLS 1.2 tickets" test "$(status "$i" .tls.resumptions.tls12_ticket)" -gt 0
    check "instance $i's access log shows the real client 127.0.0.1" \
        grep -q '^127.0.0.1 - .*"GET /hello.txt' "$T/access.$i.log"
done
# explicitly across instances: a session from instance 0 resumes on instance 1 and 2
PORT=${DIRECT[0]}
probe resume --count 1 --mech tls12-ticket --sess-out "$T/s12.pem" >/dev/null
probe resume --count 1 --mech tls13 --sess-out "$T/s13.pem" >/dev/null
for i in 1 2; do
    PORT=${DIRECT[$i]}
    expect "a TLS 1.2 ticket of instance 0 resumes on instance $i" \
        "$(kv "$(probe resume --count 1 --mech tls12-ticket --sess-in "$T/s12.pem" --sess-out "$T/x.pem")" first_resumed)" 1
    expect "a TLS 1.3 ticket of instance 0 resumes on instance $i" \
        "$(kv "$(probe resume --count 1 --mech tls13 --sess-in "$T/s13.pem" --sess-out "$T/x.pem")" first_resumed)" 1
done

# --- rotation: prepend a new key, reload every instance (SIGHUP)
keyname() {
    openssl sess_id -in "$1" -noout -text |
        sed -n '/TLS session ticket:$/{n;s/^ *0000 - //;s/   .*//;p;q}' | tr -d ' -'
}
filename() { head -c 16 "$1" | od -An -tx1 | tr -d ' \n'; }
expect "before rotation tickets are under the file's first key" "$(keyname "$T/s12.pem")" "$(filename "$T/k1")"
openssl rand 80 >"$T/k2"
cat "$T/k2" "$T/k1" >"$T/ticket.key.new"
mv "$T/ticket.key.new" "$T/ticket.key"
reloaded() { [ "$(status "$1" .reload.generation)" = 2 ]; }
for i in 0 1 2; do kill -HUP "${SPID[$i]}"; done
for i in 0 1 2; do
    check "instance $i reloaded the key file (generation 2)" wait_until 10 reloaded "$i"
done
PORT=$HP
for i in 1 2 3; do
    expect "after rotation a TLS 1.2 ticket from before resumes via haproxy ($i)" \
        "$(kv "$(probe resume --count 1 --mech tls12-ticket --sess-in "$T/s12.pem" --sess-out "$T/n12.pem")" first_resumed)" 1
    expect "after rotation a TLS 1.3 ticket from before resumes via haproxy ($i)" \
        "$(kv "$(probe resume --count 1 --mech tls13 --sess-in "$T/s13.pem" --sess-out "$T/n13.pem")" first_resumed)" 1
done
expect "the renewed TLS 1.2 ticket is under the new key" "$(keyname "$T/n12.pem")" "$(filename "$T/k2")"
probe resume --count 1 --mech tls12-ticket --sess-out "$T/f12.pem" >/dev/null
expect "a new TLS 1.2 ticket is under the new key" "$(keyname "$T/f12.pem")" "$(filename "$T/k2")"
load tls13
check "after rotation TLS 1.3 still resumes across the fleet" at_least "$RATIO" 0.99

# --- tickets off: TLS 1.2 session IDs live in each instance's own cache
for i in 0 1 2; do
    stop_instance "$i"
    start_instance "$i" ', "session_tickets": false' || exit 1
done
PORT=${DIRECT[0]}
probe resume --count 1 --mech tls12-id --sess-out "$T/id.pem" >/dev/null
PORT=${DIRECT[0]}
expect "a TLS 1.2 session ID resumes on the instance that made it" \
    "$(kv "$(probe resume --count 1 --mech tls12-id --sess-in "$T/id.pem" --sess-out "$T/x.pem")" first_resumed)" 1
PORT=${DIRECT[1]}
expect "a TLS 1.2 session ID does not resume on another instance" \
    "$(kv "$(probe resume --count 1 --mech tls12-id --sess-in "$T/id.pem" --sess-out "$T/x.pem")" first_resumed)" 0
# through haproxy a session resumes only when the next connection lands where it was made:
# about 1/3 at random; how the clients' connections interleave with roundrobin moves it
load tls12
check "TLS 1.2 session IDs through haproxy: far from all resume (got $RATIO)" \
    sh -c "awk -v r=$RATIO 'BEGIN { exit !(r < 0.6) }'"

kill -TERM "$HAPID" 2>/dev/null
wait "$HAPID" 2>/dev/null
expect "no request failed with tickets off" "$(kv "$LINE" errors)" 0
for i in 0 1 2; do stop_instance "$i"; done
check_server_log
exit $((FAILS > 0))

#!/usr/bin/env bash
# GET /status and /metrics: known traffic moves exactly the counters it should, access is
# limited to status.allow, a location rule can require a client certificate, and promtool
# accepts the metrics.
. "$(dirname "$0")/lib.sh"
make_site
mkdir -p "$T/www/private"
printf 'private\n' >"$T/www/private/index.html"
AUTH=", \"client_auth\": \"optional\", \"client_ca\": \"$CERTS/ca.crt\", \"client_crl\": \"$CERTS/ca.crl\""
LOC='"locations": [ { "path": "/private/", "require_client_cert": true } ],'
cert() { echo "--cert $CERTS/$1.crt --key $CERTS/$1.key"; }

# snap FILE: waits until the server is quiet (only this request in flight, nothing
# handshaking or closing), then saves /status.
snap() {
    for _ in $(seq 1 100); do
        tcurl -s "$BASE/status" >"$1"
        if [ "$(jq '.connections.active == 1 and .connections.handshaking == 0 and .requests.in_flight == 1' "$1")" = true ]; then return 0; fi
        sleep 0.05
    done
    not_ok "the server became quiet before $1 was saved"
    return 1
}
# delta PATH: value in $T/b minus value in $T/a
delta() { echo $(($(jq -r "$1" "$T/b") - $(jq -r "$1" "$T/a"))); }
# Every snapshot is itself one accepted connection, one full TLS 1.3 handshake, one 2xx
# request and (curl sends close_notify) one clean close, which the next snapshot sees.

TLS_EXTRA="$AUTH" TOP_EXTRA="$LOC" TIMEOUTS='"shutdown_s": 1, "handshake_s": 1' start_server || exit 1

H=$(tcurl -D - -o "$T/s.json" "$BASE/status")
expect_match "status is application/json" "$H" "Content-Type: application/json"
expect_match "status is not cached" "$H" "Cache-Control: no-store"
expect "status is valid JSON" "$(jq -r .server.name "$T/s.json")" tessera
for f in server.version server.openssl server.pid server.started_at server.uptime_s server.workers \
    connections.accepted connections.active connections.idle connections.handshaking connections.closed_clean \
    connections.closed_peer_eof connections.closed_timeout connections.closed_error connections.rejected \
    requests.total requests.in_flight 'requests.status["2xx"]' 'requests.status["3xx"]' 'requests.status["4xx"]' 'requests.status["5xx"]' \
    bytes.received bytes.sent tls.handshakes.full tls.handshakes.resumed tls.handshakes.failed \
    'tls.protocols["TLSv1.2"]' 'tls.protocols["TLSv1.3"]' tls.session_cache.entries tls.session_cache.capacity \
    tls.session_cache.hits tls.session_cache.misses tls.session_cache.timeouts tls.session_cache.evictions \
    tls.client_certs.verified tls.client_certs.absent tls.client_certs.rejected 'workers[0].id' 'workers[0].connections' \
    'workers[0].requests' 'workers[1].queue_depth' tls.resumptions.tls13_ticket tls.resumptions.tls12_ticket \
    tls.resumptions.tls12_session_id tls.handshakes.failure_reasons.timeout tls.client_certs.reasons.expired; do
    v=$(jq -r ".$f" "$T/s.json")
    if [ "$v" != null ]; then ok "status field $f ($v)"; else not_ok "status field $f missing"; fi
done
expect "server.workers" "$(jq .server.workers "$T/s.json")" 2
expect "session cache capacity is the configured size" "$(jq .tls.session_cache.capacity "$T/s.json")" 20480
expect "client-auth mode is shown" "$(jq -r .tls.client_certs.mode "$T/s.json")" optional
P=$(tcurl "$BASE/status?pretty")
expect_match "?pretty indents" "$P" $'^\\{\n\t"server":'
expect "?pretty is the same document" "$(printf '%s' "$P" | jq -c 'del(.server.uptime_s,.connections,.requests,.bytes,.tls,.workers,.http2)')" "$(jq -c 'del(.server.uptime_s,.connections,.requests,.bytes,.tls,.workers,.http2)' "$T/s.json")"

# --- requests: 25 successes on one keep-alive connection and 5 misses
snap "$T/a"
probe get --keepalive 25 --path /hello.txt >/dev/null
probe get --keepalive 5 --path /missing.html >/dev/null
snap "$T/b"
expect "requests.total grew by exactly 30 + the status request" "$(delta .requests.total)" 31
expect "2xx grew by 25 + the previous status request" "$(delta '.requests.status["2xx"]')" 26
expect "4xx grew by exactly 5" "$(delta '.requests.status["4xx"]')" 5
expect "two connections + the status connection accepted" "$(delta .connections.accepted)" 3
expect "per-worker requests add up to requests.total" "$(jq '[.workers[].requests] | add' "$T/b")" "$(jq .requests.total "$T/b")"
expect "bytes.sent grew" "$(($(delta .bytes.sent) > 25 * 6))" 1

# --- parallel load on both workers: still exact
snap "$T/a"
pids=()
for i in 1 2 3 4; do probe get --keepalive 50 --path /hello.txt >/dev/null & pids+=($!); done
wait "${pids[@]}"
snap "$T/b"
expect "four parallel clients: requests.total grew by exactly 200 + 1" "$(delta .requests.total)" 201
w0=$(($(jq '.workers[0].requests' "$T/b") - $(jq '.workers[0].requests' "$T/a")))
w1=$(($(jq '.workers[1].requests' "$T/b") - $(jq '.workers[1].requests' "$T/a")))
expect "both workers served" "$((w0 > 0 && w1 > 0))" 1

# --- handshakes: full, and resumed by each mechanism
for mech in tls13 tls12-ticket tls12-id; do
    snap "$T/a"
    probe resume --count 11 --mech $mech >/dev/null
    snap "$T/b"
    key=$(case $mech in tls13) echo tls13_ticket ;; tls12-ticket) echo tls12_ticket ;; tls12-id) echo tls12_session_id ;; esac)
    expect "$mech: resumptions.$key grew by exactly 10" "$(delta .tls.resumptions.$key)" 10
    expect "$mech: handshakes.resumed grew by exactly 10" "$(delta .tls.handshakes.resumed)" 10
    expect "$mech: handshakes.full grew by 1 + the status connection" "$(delta .tls.handshakes.full)" 2
    other=$(for k in tls13_ticket tls12_ticket tls12_session_id; do [ $k = $key ] || echo -n "$(delta .tls.resumptions.$k)"; done)
    expect "$mech: the other mechanisms did not move" "$other" 00
done
expect "TLS 1.2 handshakes counted" "$(($(jq '.tls.protocols["TLSv1.2"]' "$T/b") >= 22))" 1
expect "session IDs are in the cache" "$(($(jq .tls.session_cache.entries "$T/b") >= 1))" 1
expect "cache hits counted" "$(($(jq .tls.session_cache.hits "$T/b") >= 10))" 1

# --- closes: a clean one, a truncated one, a timeout
snap "$T/a"
probe close-notify --path /hello.txt >/dev/null
snap "$T/b"
expect "a close_notify exchange moves closed_clean by 1 (+ the status connection)" "$(delta .connections.closed_clean)" 2
expect "...and nothing else" "$(delta .connections.closed_peer_eof)$(delta .connections.closed_error)$(delta .connections.closed_timeout)" 000
snap "$T/a"
probe vanish --stage request >/dev/null
snap "$T/b"
expect "a client that vanishes without close_notify moves closed_peer_eof by exactly 1" "$(delta .connections.closed_peer_eof)" 1
expect "...and closed_clean only by the status connection" "$(delta .connections.closed_clean)" 1
snap "$T/a"
"$TS_PROBE" hold --port "$PORT" --plain --count 1 --seconds 3 --ignore-stdin >/dev/null 2>&1
snap "$T/b"
expect "a silent client moves timeouts.handshake by 1" "$(delta .timeouts.handshake)" 1
expect "...closed_timeout by 1" "$(delta .connections.closed_timeout)" 1
expect "...and handshakes.failed with reason timeout" "$(delta .tls.handshakes.failed) $(delta .tls.handshakes.failure_reasons.timeout)" "1 1"

# --- failed handshakes by reason
snap "$T/a"
printf 'GET / HTTP/1.1\r\nHost: a\r\n\r\n' | timeout 5 curl -s "http://127.0.0.1:$PORT/" -o /dev/null
timeout 5 openssl s_client -connect "127.0.0.1:$PORT" -tls1_1 -cipher 'DEFAULT:@SECLEVEL=0' </dev/null >/dev/null 2>&1
snap "$T/b"
expect "plain HTTP on the TLS port: failure reason http_on_tls_port" "$(delta .tls.handshakes.failure_reasons.http_on_tls_port)" 1
expect "TLS 1.1: failure reason protocol_version" "$(delta .tls.handshakes.failure_reasons.protocol_version)" 1
expect "handshakes.failed grew by 2" "$(delta .tls.handshakes.failed)" 2
expect "both closes counted as errors" "$(delta .connections.closed_error)" 2

# --- client certificates by outcome and reason
snap "$T/a"
tcurl $(cert client) -o /dev/null "$BASE/private/"
tcurl $(cert client-expired) -o /dev/null "$BASE/private/"
tcurl $(cert client-revoked) -o /dev/null "$BASE/private/"
tcurl $(cert client-other) -o /dev/null "$BASE/hello.txt"
snap "$T/b"
expect "client_certs.verified +1" "$(delta .tls.client_certs.verified)" 1
expect "client_certs.rejected +3" "$(delta .tls.client_certs.rejected)" 3
expect "reasons: expired +1, revoked +1, untrusted_issuer +1" "$(delta .tls.client_certs.reasons.expired)$(delta .tls.client_certs.reasons.revoked)$(delta .tls.client_certs.reasons.untrusted_issuer)" 111
expect "client_certs.absent: the status connections" "$(delta .tls.client_certs.absent)" 1
expect "403s counted as 4xx" "$(delta '.requests.status["4xx"]')" 2

# --- /metrics
tcurl -D "$T/mh" -o "$T/metrics" "$BASE/metrics"
expect_match "metrics content type" "$(cat "$T/mh")" "Content-Type: text/plain; version=0.0.4"
if promtool check metrics <"$T/metrics" >"$T/promtool.out" 2>&1; then ok "promtool check metrics accepts /metrics"; else
    not_ok "promtool check metrics: $(head -5 "$T/promtool.out")"
fi
M=$(cat "$T/metrics")
for m in 'tessera_requests_total [0-9]+' 'tessera_responses_total\{class="2xx"\} [0-9]+' \
    'tessera_connections_closed_total\{how="peer_eof"\} [1-9]' 'tessera_tls_resumptions_total\{mechanism="tls13_ticket"\} [1-9]' \
    'tessera_tls_handshake_failures_total\{reason="timeout"\} 1' 'tessera_client_cert_reasons_total\{reason="expired"\} 1' \
    'tessera_tls_protocol_handshakes_total\{protocol="TLSv1.2"\} [1-9]' 'tessera_worker_requests_total\{worker="1"\} [1-9]' \
    '# TYPE tessera_requests_total counter' '# HELP tessera_connections_active ' 'tessera_info\{version="'; do
    expect_match "metrics has /$m/" "$M" "$m"
done
tcurl -o "$T/s.json" "$BASE/status"
rq=$(sed -n 's/^tessera_tls_handshakes_total{result="resumed"} //p' "$T/metrics")
expect "metrics and status agree on resumed handshakes" "$rq" "$(jq .tls.handshakes.resumed "$T/s.json")"
stop_server
expect "server exits 0" "$?" 0
check_server_log

# --- access: status.allow and a location rule
TOP_EXTRA='"status": { "allow": ["10.0.0.0/8", "fd00::/8"] },' start_server || exit 1
expect "an address outside status.allow gets 403" "$(tcurl -o /dev/null -w '%{http_code}' "$BASE/status")" 403
expect "...for /metrics too" "$(tcurl -o /dev/null -w '%{http_code}' "$BASE/metrics")" 403
expect "...while the site is served" "$(tcurl "$BASE/hello.txt")" hello
stop_server
PORT6=$(pick_port)
TOP_EXTRA='"status": { "allow": ["127.0.0.1"], "path": "/_s", "metrics_path": "/_m" },' LISTEN="127.0.0.1:0" write_config
sed -i "s|\"listen\": \"127.0.0.1:0\"|\"listen\": [\"127.0.0.1:$PORT6\", \"[::1]:$PORT6\"]|" "$T/tessera.json"
PORT=$PORT6
spawn_server "$TS_BIN" --config "$T/tessera.json" || exit 1
expect "status.path moves the endpoint" "$(tcurl -o /dev/null -w '%{http_code}' "$BASE/_s")" 200
expect "...and /status is then an ordinary (missing) file" "$(tcurl -o /dev/null -w '%{http_code}' "$BASE/status")" 404
expect "status.metrics_path moves the metrics" "$(tcurl -o /dev/null -w '%{http_code}' "$BASE/_m")" 200
V6=$(curl -sS --max-time 10 --cacert "$CERTS/ca.crt" -o /dev/null -w '%{http_code}' "https://[::1]:$PORT/_s")
expect "IPv6 ::1 is outside an allow list of 127.0.0.1 only" "$V6" 403
V6=$(curl -sS --max-time 10 --cacert "$CERTS/ca.crt" "https://[::1]:$PORT/hello.txt")
expect "the site answers over IPv6" "$V6" hello
stop_server
TOP_EXTRA='"status": { "allow": ["::1/128"] },' start_server || exit 1
expect "127.0.0.1 outside an IPv6-only allow list" "$(tcurl -o /dev/null -w '%{http_code}' "$BASE/status")" 403
stop_server
TLS_EXTRA="$AUTH" TOP_EXTRA='"locations": [ { "path": "/status", "require_client_cert": true } ],' start_server || exit 1
expect "a location rule can require a client certificate for /status" "$(tcurl -o /dev/null -w '%{http_code}' "$BASE/status")" 403
expect "...which a verified client passes" "$(tcurl $(cert client) -o /dev/null -w '%{http_code}' "$BASE/status")" 200
stop_server
TOP_EXTRA='"status": { "enabled": false },' start_server || exit 1
expect "status.enabled false turns the endpoint off" "$(tcurl -o /dev/null -w '%{http_code}' "$BASE/status")" 404
stop_server
OUT=$(TOP_EXTRA='"status": { "allow": ["not-an-ip"] },' write_config; oneshot "$TS_BIN" --config "$T/tessera.json" --check-config)
expect_match "a bad allow entry names the key" "$OUT" 'status.allow\[0\]: not an address'
OUT=$(TOP_EXTRA='"status": { "allow": ["10.0.0.0/33"] },' write_config; oneshot "$TS_BIN" --config "$T/tessera.json" --check-config)
expect_match "a bad prefix names the key" "$OUT" 'status.allow\[0\]'
check_server_log

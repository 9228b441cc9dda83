#!/usr/bin/env bash
# Post-handshake floods: a TLS 1.3 client sending KeyUpdate(update_requested) non-stop and never
# reading is closed after 32 in a row and counted; one that slips a header byte between every
# 30 of them (which resets the count) gets a bounded share of its worker per loop turn. Either
# way another client on the same (single) worker is answered meanwhile.
. "$(dirname "$0")/lib.sh"
make_site
WORKERS=1 TIMEOUTS='"shutdown_s": 1, "request_header_s": 30' start_server || exit 1
stat_of() { tcurl "$BASE/status" | python3 -c "import json,sys; d=json.load(sys.stdin); print(d$1)"; }

# answered_within MS: a request on the flooded worker completes within MS
answered_within() {
    local start ms code
    start=$(date +%s%N)
    code=$(tcurl -o /dev/null -w '%{http_code}' "$BASE/hello.txt")
    ms=$((($(date +%s%N) - start) / 1000000))
    if [ "$code" = 200 ] && [ "$ms" -lt "$1" ]; then ok "$2: another client is answered (${ms} ms)"
    else not_ok "$2: another client's request took ${ms} ms (status $code)"; fi
}

R=$(probe keyupdate --tls13 --seconds $((10 * MULT)))
expect "a KeyUpdate flood is cut by the server" "$(kv "$R" end)" closed
sent=$(kv "$R" sent)
if [ "${sent:-0}" -ge 33 ]; then ok "...after the client sent $sent KeyUpdates"; else not_ok "...sent=$sent ($R)"; fi
expect "...and counted as a key_update flood" "$(stat_of "['connections']['closed_flood']['key_update']")" 1
expect_match "...and logged at info" "$(cat "$T/error.log")" "more than 32 key_update messages"

# Under the limit, with a header byte every 30 KeyUpdates: the connection stays, but yields.
probe keyupdate --tls13 --seconds $((6 * MULT)) --data-every 30 >"$T/slow-flood.out" &
F=$!
sleep 1
for i in 1 2 3; do answered_within $((2000 * MULT)) "during a KeyUpdate flood under the limit ($i)"; done
wait $F
R=$(cat "$T/slow-flood.out")
if [ "$(kv "$R" sent)" -gt 1000 ]; then ok "...which sent $(kv "$R" sent) KeyUpdates meanwhile"; else not_ok "...flood too slow to test: $R"; fi

# Several floods at once, one of them never reading at all
FL=()
for i in 1 2; do
    probe keyupdate --tls13 --seconds $((6 * MULT)) --data-every 30 >/dev/null &
    FL+=($!)
done
probe keyupdate --tls13 --seconds $((6 * MULT)) >/dev/null &
FL+=($!)
sleep 1
answered_within $((2000 * MULT)) "during three floods"
wait "${FL[@]}"
expect "...the one without application data was closed" "$(stat_of "['connections']['closed_flood']['key_update']")" 2
M=$(tcurl "$BASE/metrics")
expect_match "/metrics counts flood closes by kind" "$M" 'tessera_connections_closed_flood_total\{reason="key_update"\} 2'
expect "server still serves" "$(tcurl -o /dev/null -w '%{http_code}' "$BASE/hello.txt")" 200
stop_server
expect "server exits 0" "$?" 0
check_server_log

#!/usr/bin/env bash
# Per-site counters across a reload: requests that a keep-alive connection accepted before the
# reload makes after it count for its site as /status shows it on new connections (the same
# counters for the site of the same name), so the sites' requests still add up to
# requests.total and never go down from one /status to the next.
. "$(dirname "$0")/lib.sh"
make_site
mkdir -p "$T/other"
printf 'other\n' >"$T/other/index.html"
TOP_EXTRA="\"sites\": [ { \"server_names\": [\"other.test\"], \"root\": \"$T/other\",
    \"certificates\": [ { \"certificate\": \"$CERTS/server.crt\", \"key\": \"$CERTS/server.key\" } ] } ],"
WORKERS=1 start_server || exit 1

# the reload adds a site: an old connection's /status must list it
mkdir -p "$T/third"
TOP_EXTRA2="\"sites\": [ { \"server_names\": [\"other.test\"], \"root\": \"$T/other\",
    \"certificates\": [ { \"certificate\": \"$CERTS/server.crt\", \"key\": \"$CERTS/server.key\" } ] },
    { \"server_names\": [\"third.test\"], \"root\": \"$T/third\",
    \"certificates\": [ { \"certificate\": \"$CERTS/server.crt\", \"key\": \"$CERTS/server.key\" } ] } ],"

# requests.total and the sum of the sites' requests, as a new connection sees them
counts() {
    tcurl "$BASE/status" | /usr/bin/python3 -c '
import json, sys
d = json.load(sys.stdin)
print(d["requests"]["total"], sum(s["requests"] for s in d["sites"]))'
}
loaded() { grep -q 'configuration generation 2 loaded' "$T/error.log"; }
served() { [ "$(grep -c 'GET /hello.txt' "$T/access.log")" -ge "$1" ]; }

# one keep-alive connection: a request, then (once the reload is done) five more and /status,
# the last with Connection: close
REQ='GET /hello.txt HTTP/1.1\r\nHost: localhost\r\n\r\n'
{
    printf '%b' "$REQ"
    for _ in $(seq 1 $((100 * MULT))); do [ -e "$T/go" ] && break; sleep 0.1; done
    for _ in 1 2 3 4 5; do printf '%b' "$REQ"; done
    printf '%b' 'GET /status HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n'
    for _ in $(seq 1 $((100 * MULT))); do served 6 && break; sleep 0.1; done
} | timeout $((30 * MULT)) openssl s_client -quiet -connect "127.0.0.1:$PORT" -servername localhost \
    -CAfile "$CERTS/ca.crt" >"$T/keepalive.out" 2>/dev/null &
KA=$!
wait_until 10 served 1
before=$(counts)
WORKERS=1 TOP_EXTRA=$TOP_EXTRA2 write_config
kill -HUP "$SERVER_PID"
wait_until 10 loaded
touch "$T/go"
wait_until 10 served 6
wait "$KA"
expect "the old connection was answered 7 times" "$(grep -c '^HTTP/1.1 200' "$T/keepalive.out")" 7
check "...and its /status lists the site the reload added" grep -q '"name":"third.test"' "$T/keepalive.out"

after=$(counts)
read -r total sites <<<"$after"
expect "the sites' requests add up to requests.total after the reload ($after)" "$sites" "$total"
read -r _ sites_before <<<"$before"
if [ "$sites" -gt "$sites_before" ]; then ok "the sites' requests grew ($sites_before -> $sites)"; else
    not_ok "the sites' requests did not grow ($sites_before -> $sites)"
fi

stop_server
check_server_log

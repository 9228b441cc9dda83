#!/usr/bin/env bash
# A HelloRetryRequest keeps the connection on the site its first ClientHello chose: the second
# ClientHello goes through the site selection again (every SSL has moved to its site's
# context by then), so one naming another site is refused with illegal_parameter, and one
# naming the same site completes, for the default site and for a client-auth site.
. "$(dirname "$0")/lib.sh"
make_site
TOP_EXTRA="\"sites\": [ { \"server_names\": [\"secure.test\"], \"root\": \"$T/www\",
    \"certificates\": [ { \"certificate\": \"$CERTS/server.crt\", \"key\": \"$CERTS/server.key\" } ],
    \"client_auth\": \"required\", \"client_ca\": \"$CERTS/ca.crt\" } ],"
ALLOWED_ERRORS='certificate covers none' start_server || exit 1

# the server certificate names localhost only: secure.test's connections are not verified
probe_nv() { timeout $((60 * MULT)) "$TS_PROBE" get --port "$PORT" --timeout-ms $((5000 * MULT)) "$@"; }

# --hrr-servername: key share for ffdhe2048 only (the server offers X25519 and P-256), so the
# server asks again; the second ClientHello names that name
out=$(probe get --tls13 --hrr-servername localhost)
expect_match "after a HelloRetryRequest, the default site answers" "$out" "statuses=200"
out=$(probe_nv --tls13 --servername secure.test --hrr-servername secure.test \
    --cert "$CERTS/client.crt" --key "$CERTS/client.key")
expect_match "after a HelloRetryRequest, the client-auth site answers a client certificate" \
    "$out" "statuses=200"
out=$(probe_nv --tls13 --hrr-servername secure.test 2>&1)
expect_match "a second ClientHello naming another site is refused" "$out" "illegal parameter"
expect_no_match "nothing is served to it" "$out" "statuses=200"

stop_server
check_server_log

#!/usr/bin/env bash
# Location paths match at segment boundaries: a rule for /status protects /status and
# /status/..., not /status.html; the README's recipe protects both /status and /metrics with a
# client certificate while the dashboard page stays public.
. "$(dirname "$0")/lib.sh"
make_site
printf 'dashboard\n' >"$T/www/status.html"
printf 'metrics page\n' >"$T/www/metrics.txt"
mkdir -p "$T/www/private" "$T/www/privateer"
printf 'private\n' >"$T/www/private/index.html"
printf 'public\n' >"$T/www/privateer/index.html"
printf 'pub\n' >"$T/www/private.txt"
AUTH=", \"client_auth\": \"optional\", \"client_ca\": \"$CERTS/ca.crt\", \"client_crl\": \"$CERTS/ca.crl\""
LOC='"locations": [ { "path": "/status", "require_client_cert": true },
                    { "path": "/metrics", "require_client_cert": true },
                    { "path": "/priv", "require_client_cert": true },
                    { "path": "/private/", "require_client_cert": true } ],'
CERT="--cert $CERTS/client.crt --key $CERTS/client.key"
code() { tcurl -s -o /dev/null -w '%{http_code}' "$@"; }

TLS_EXTRA="$AUTH" TOP_EXTRA="$LOC" start_server || exit 1
expect "/status without a certificate: 403" "$(code "$BASE/status")" 403
expect "/status?pretty without a certificate: 403" "$(code "$BASE/status?pretty")" 403
expect "/metrics without a certificate: 403" "$(code "$BASE/metrics")" 403
expect "/status with a certificate: 200" "$(code $CERT "$BASE/status")" 200
expect "/metrics with a certificate: 200" "$(code $CERT "$BASE/metrics")" 200
expect "/status.html (not under /status): 200 without a certificate" "$(code "$BASE/status.html")" 200
expect "/metrics.txt (not under /metrics): 200 without a certificate" "$(code "$BASE/metrics.txt")" 200
expect "/status/x is under /status: 403" "$(code "$BASE/status/x")" 403
expect "/private/ as before: 403" "$(code "$BASE/private/")" 403
expect "/private (the redirect to the slash) as before: 403" "$(code "$BASE/private")" 403
expect "/privateer/ is not under /private/: 200" "$(code "$BASE/privateer/")" 200
expect "/private.txt is not under /private/ nor /priv: 200" "$(code "$BASE/private.txt")" 200
expect "/priv/ (a rule without slash covers what is below it)" "$(code "$BASE/priv/")" 403
stop_server
expect "server exits 0" "$?" 0
check_server_log

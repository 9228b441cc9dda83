#!/usr/bin/env bash
# Client certificates in every mode: the 403 page (HTML, template, JSON, detail level) that
# says why, handshake alerts in required mode, identity carried by resumed sessions, and the
# session ID context keeping sessions to the policy that made them.
. "$(dirname "$0")/lib.sh"
make_site
mkdir -p "$T/www/private"
printf 'private area\n' >"$T/www/private/index.html"
printf 'private file\n' >"$T/www/private/file.txt"
CA=$CERTS/ca.crt
AUTH_TLS() { # mode [extra]
    echo ", \"client_auth\": \"$1\", \"client_ca\": \"$CA\", \"client_crl\": \"$CERTS/ca.crl\" ${2:-}"
}
LOC='"locations": [ { "path": "/private/", "require_client_cert": true } ],'
cert() { echo "--cert $CERTS/$1.crt --key $CERTS/$1.key"; }
# page CERT PATH [curl args]: sets P (the body) and CODE (the status)
page() {
    local c=$1 p=$2
    shift 2
    local args=()
    [ "$c" = none ] || args=(--cert "$CERTS/$c.crt" --key "$CERTS/$c.key")
    CODE=$(tcurl "${args[@]}" -o "$T/page" -w '%{http_code}' "$@" "$BASE$p")
    P=$(cat "$T/page")
}

### optional
TLS_EXTRA=$(AUTH_TLS optional) TOP_EXTRA=$LOC LOG_LEVEL=debug start_server || exit 1
page none /
expect "optional: a public page is served without a certificate" "$CODE" 200
page client-other /hello.txt
expect "optional: a public page is served with an untrusted certificate" "$CODE $P" "200 hello"
page client /private/
expect "optional: a verified client gets the protected page" "$CODE $P" "200 private area"
page client /private/file.txt
expect "optional: ...and files under it" "$CODE $P" "200 private file"

# reason check: CERT REASON SENTENCE-REGEX
check_reason() {
    page "$1" /private/
    expect "optional: $1 -> 403" "$CODE" 403
    expect_match "optional: $1 -> page says $2" "$P" "data-reason=\"$2\">$3"
}
check_reason none no_certificate "No client certificate was presented"
check_reason client-other untrusted_issuer "The client certificate was not issued by an authority this server trusts"
check_reason client-expired expired "The client certificate has expired"
check_reason client-notyet not_yet_valid "The client certificate is not valid yet"
check_reason client-revoked revoked "The client certificate has been revoked by its issuer"
check_reason client-wrongpurpose wrong_purpose "The client certificate is not meant for client authentication"

page client-expired /private/
expect_match "the page shows the certificate's subject" "$P" "<dt>Subject</dt><dd>O=tessera,CN=bob</dd>"
expect_match "...its issuer" "$P" "<dt>Issuer</dt><dd>CN=tessera development CA,O=tessera</dd>"
expect_match "...valid from" "$P" "<dt>Valid from</dt><dd>2020-01-01T00:00:00Z</dd>"
expect_match "...valid until" "$P" "<dt>Valid until</dt><dd>2021-01-01T00:00:00Z</dd>"
page none /private/
expect_no_match "without a certificate there are no certificate details" "$P" "<dt>Subject"
H=$(tcurl -D - -o /dev/null "$BASE/private/")
expect_match "403 is HTML" "$H" "Content-Type: text/html; charset=utf-8"
expect_match "403 is not cached" "$H" "Cache-Control: no-store"

page client-other /private/ -H 'Accept: application/json'
expect "JSON when the client accepts application/json: status" "$CODE" 403
expect_match "JSON body with the reason" "$P" '^\{"status":403,"error":"client_certificate","reason":"untrusted_issuer","message":"The client certificate was not issued by an authority this server trusts\.","certificate":\{"subject":"O=elsewhere,CN=eve","issuer":"CN=another CA,O=elsewhere","not_before":"[0-9T:-]+Z","not_after":"[0-9T:-]+Z","serial":"[0-9A-F]+"\}\}$'
H=$(tcurl -D - -o /dev/null -H 'Accept: application/json' "$BASE/private/")
expect_match "JSON Content-Type" "$H" "Content-Type: application/json"
page none /private/ -H 'Accept: text/html,application/json;q=0.9'
expect_match "a browser's Accept gets HTML" "$P" "<!DOCTYPE html>"

# the protected location is matched on the decoded, normalized path: every spelling of
# /private/ is refused (403) without a certificate; a path above the root is not a path (400)
for p in /private /public/../private/ /%70rivate/file.txt /./private//file.txt /PRIVATE/../private/ \
    /private/./file.txt /private/sub/../file.txt /%2e/private/ '/%50RIVATE/../%70rivate/'; do
    CODE=$(tcurl --path-as-is -o /dev/null -w '%{http_code}' "$BASE$p")
    expect "optional: $p without a certificate" "$CODE" 403
done
expect "optional: /../private/ (above the root) is a bad path" "$(tcurl --path-as-is -o /dev/null -w '%{http_code}' "$BASE/../private/")" 400
expect "optional: /%70rivate/file.txt with a verified certificate" "$(tcurl $(cert client) --path-as-is "$BASE/%70rivate/file.txt")" "private file"

# 403 ends like any other response
R=$(probe get --keepalive 3 --path /private/)
expect "403 keeps a keep-alive connection open" "$(kv "$R" statuses) $(kv "$R" reused_connection)" "403,403,403 1"
R=$(probe close-notify --path /private/)
expect "403 with Connection: close is followed by close_notify" "$(kv "$R" status) $(kv "$R" end)" "403 close_notify"

# access log: the verified subject, or "-"
tcurl $(cert client) -A al-verified -o /dev/null "$BASE/hello.txt"
tcurl $(cert client-other) -A al-untrusted -o /dev/null "$BASE/hello.txt"
wait_until 3 grep -q al-verified "$T/access.log"
wait_until 3 grep -q al-untrusted "$T/access.log"
expect_match "access log records the verified subject" "$(grep al-verified "$T/access.log")" '^127\.0\.0\.1 - O=tessera,CN=alice \['
expect_match "access log records - for an unverified certificate" "$(grep al-untrusted "$T/access.log")" '^127\.0\.0\.1 - - \['

# resumption carries the identity the session was verified with, for every mechanism
for mech in tls13 tls12-ticket tls12-id; do
    R=$(probe resume --count 20 --mech $mech $(cert client) --path /private/)
    expect "$mech: a resumed verified session reaches the protected page" "$(kv "$R" resumed) $(kv "$R" status)" "19 200"
    probe resume --count 1 --mech $mech --path /private/ --sess-out "$T/anon.$mech" >/dev/null
    R=$(probe resume --count 1 --mech $mech $(cert client) --path /private/ --sess-in "$T/anon.$mech")
    expect "$mech: a session that did not verify is never upgraded" "$(kv "$R" first_resumed) $(kv "$R" status)" "1 403"
    probe resume --count 1 --mech $mech $(cert client-expired) --path /private/ --sess-out "$T/exp.$mech" >/dev/null
    R=$(probe resume --count 1 --mech $mech $(cert client) --path /private/ --sess-in "$T/exp.$mech")
    expect "$mech: a session with an expired certificate stays refused" "$(kv "$R" first_resumed) $(kv "$R" status)" "1 403"
done
stop_server
expect "server exits 0" "$?" 0
check_server_log

### optional, reason-only pages, and a site template
mkdir -p "$T/www/errors"
printf '<html><body class="tpl"><h1>{{status}} {{ reason }}</h1><p>{{message}}</p>{{details}}<i>{{subject}}</i><b>{{unknown}}</b></body></html>\n' >"$T/www/errors/403.html"
TLS_EXTRA=$(AUTH_TLS optional ', "client_cert_detail": "reason"') TOP_EXTRA=$LOC start_server || exit 1
page client-expired /private/
expect "the site's errors/403.html template is used" "$P" '<html><body class="tpl"><h1>403 expired</h1><p>The client certificate has expired.</p><i></i><b></b></body></html>'
page client-expired /private/ -H 'Accept: application/json'
expect_no_match "client_cert_detail reason: no certificate in the JSON" "$P" "certificate\":|CN=bob"
stop_server
rm -r "$T/www/errors"
TLS_EXTRA=$(AUTH_TLS optional) TOP_EXTRA=$LOC start_server || exit 1
printf '{{status}}|{{subject}}|{{issuer}}|{{not_before}}|{{not_after}}|<{{reason}}>\n' >"$T/tpl"
mkdir -p "$T/www/errors" && cp "$T/tpl" "$T/www/errors/403.html"
page client-expired /private/
expect "template placeholders with full detail" "$P" "403|O=tessera,CN=bob|CN=tessera development CA,O=tessera|2020-01-01T00:00:00Z|2021-01-01T00:00:00Z|<expired>"
printf '{{subject}}\n' >"$T/www/errors/403.html"
openssl req -new -x509 -key "$CERTS/client.key" -subj '/CN=<script>alert(1)<\/script>' -days 2 -out "$T/xss.crt" 2>/dev/null
P=$(tcurl --cert "$T/xss.crt" --key "$CERTS/client.key" "$BASE/private/")
expect_match "certificate fields are HTML-escaped" "$P" "CN=.*&lt;script.*&gt;alert\(1\)"
expect_no_match "...no markup from a certificate reaches the page" "$P" "<script"
rm -r "$T/www/errors"
stop_server

### optional_no_ca
TLS_EXTRA=$(AUTH_TLS optional_no_ca) TOP_EXTRA=$LOC start_server || exit 1
page client /private/
expect "optional_no_ca: a verified client gets the protected page" "$CODE" 200
page client-other /private/
expect "optional_no_ca: a certificate from an unknown issuer still gets 403 on protected paths" "$CODE" 403
expect_match "...saying the issuer is not trusted" "$P" 'data-reason="untrusted_issuer"'
tcurl $(cert client-other) -A nc-untrusted -o /dev/null "$BASE/hello.txt"
wait_until 3 grep -q nc-untrusted "$T/access.log"
expect_match "optional_no_ca: the unknown issuer's subject is logged, marked unverified" "$(grep nc-untrusted "$T/access.log")" '^127\.0\.0\.1 - unverified:O=elsewhere,CN=eve \['
page none /private/
expect "optional_no_ca: no certificate -> 403" "$CODE" 403
stop_server

### required
TLS_EXTRA=$(AUTH_TLS required) TOP_EXTRA=$LOC start_server || exit 1
alert_of() { # version cert
    local a=()
    [ "$2" = none ] || a=(--cert "$CERTS/$2.crt" --key "$CERTS/$2.key")
    R=$(probe alert "--$1" "${a[@]}" --request --path /)
    echo "$(kv "$R" alert) $(kv "$R" status)"
}
expect "required, TLS 1.3, no certificate: certificate_required alert, nothing served" "$(alert_of tls13 none)" "certificate_required 0"
expect "required, TLS 1.2, no certificate: handshake_failure alert, nothing served" "$(alert_of tls12 none)" "handshake_failure 0"
for v in tls13 tls12; do
    expect "required, $v, unknown issuer: unknown_ca" "$(alert_of $v client-other)" "unknown_ca 0"
    expect "required, $v, expired: certificate_expired" "$(alert_of $v client-expired)" "certificate_expired 0"
    expect "required, $v, revoked: certificate_revoked" "$(alert_of $v client-revoked)" "certificate_revoked 0"
    expect "required, $v, verified client is served" "$(alert_of $v client)" "close_notify 200"
done
page client /private/
expect "required: a verified client reaches protected paths" "$CODE $P" "200 private area"
for mech in tls13 tls12-ticket tls12-id; do
    R=$(probe resume --count 20 --mech $mech $(cert client) --path /private/)
    expect "required, $mech: resumed sessions keep their identity" "$(kv "$R" resumed) $(kv "$R" status)" "19 200"
done
O=$(tcurl -o /dev/null "$BASE/" 2>&1)
expect "curl without a certificate fails (status 56)" "$?" 56
expect_match "...on the server's certificate_required alert" "$O" "alert certificate required"
O=$(tcurl --tls-max 1.2 -o /dev/null "$BASE/" 2>&1)
expect "curl over TLS 1.2 without a certificate fails at the handshake (status 35)" "$?" 35
expect_match "...on the server's handshake_failure alert" "$O" "alert handshake failure"
stop_server
check_server_log

### configurations that can never work stop the server, naming the key
cfgerr() { # description tls-extra top-extra expected
    PORT=$(pick_port)
    TLS_EXTRA=$2 TOP_EXTRA=$3 write_config
    OUT=$(oneshot "$TS_BIN" --config "$T/tessera.json" --check-config)
    local rc=$?
    if [ $rc = 2 ] && printf '%s' "$OUT" | grep -qF -- "$4"; then ok "$1 -> exit 2 naming $4"; else not_ok "$1 (exit $rc: $OUT)"; fi
}
cfgerr "protected location with client_auth none" "" "$LOC" "locations[0].require_client_cert: needs tls.client_auth"
cfgerr "optional without client_ca" ', "client_auth": "optional"' "" "tls.client_ca: required when tls.client_auth is \"optional\""
cfgerr "required without client_ca" ', "client_auth": "required"' "" "tls.client_ca: required"
cfgerr "missing client_ca file" ", \"client_auth\": \"optional\", \"client_ca\": \"$T/none.crt\"" "" "tls.client_ca: $T/none.crt"
printf 'junk\n' >"$T/junk.pem"
cfgerr "client_ca without certificates" ", \"client_auth\": \"optional\", \"client_ca\": \"$T/junk.pem\"" "" "tls.client_ca: $T/junk.pem"
cfgerr "client_crl that is not a CRL" ", \"client_auth\": \"optional\", \"client_ca\": \"$CA\", \"client_crl\": \"$T/junk.pem\"" "" "tls.client_crl: $T/junk.pem"
cfgerr "bad client_auth value" ', "client_auth": "maybe"' "" "tls.client_auth: must be one of"
cfgerr "location path without a slash" "$(AUTH_TLS optional)" '"locations": [ { "path": "private" } ],' "locations[0].path: must be a URL path"
cfgerr "unknown location key" "$(AUTH_TLS optional)" '"locations": [ { "path": "/p/", "require": true } ],' "locations[0].require: unknown key"
cfgerr "optional_no_ca protected paths without a CA" ', "client_auth": "optional_no_ca"' "$LOC" "tls.client_ca: required for locations"

### the session ID context covers the client-auth policy (tickets shared through a key file)
head -c 80 /dev/urandom >"$T/tk.key"
KEY=", \"ticket_key_file\": \"$T/tk.key\""
TLS_EXTRA="$KEY" start_server || exit 1
for mech in tls13 tls12-ticket; do probe resume --count 1 --mech $mech --sess-out "$T/none.$mech" >/dev/null; done
stop_server
TLS_EXTRA="$KEY" start_server || exit 1
expect "control: the same policy resumes after a restart" "$(kv "$(probe resume --count 1 --mech tls13 --sess-in "$T/none.tls13")" first_resumed)" 1
stop_server
TLS_EXTRA="$KEY$(AUTH_TLS required)" start_server || exit 1
for mech in tls13 tls12-ticket; do
    R=$(probe resume --count 1 --mech $mech $(cert client) --sess-in "$T/none.$mech")
    expect "$mech: a session from client_auth none is not resumed under required" "$(kv "$R" first_resumed)" 0
done
for mech in tls13 tls12-ticket; do probe resume --count 1 --mech $mech $(cert client) --path /private/ --sess-out "$T/req.$mech" >/dev/null; done
stop_server
TLS_EXTRA="$KEY$(AUTH_TLS optional)" TOP_EXTRA=$LOC start_server || exit 1
for mech in tls13 tls12-ticket; do
    R=$(probe resume --count 1 --mech $mech --sess-in "$T/req.$mech" --path /private/)
    expect "$mech: a session from required is not resumed under optional" "$(kv "$R" first_resumed)" 0
done
stop_server
cp "$CERTS/other-ca.crt" "$T/ca2.crt"
TLS_EXTRA="$KEY, \"client_auth\": \"required\", \"client_ca\": \"$T/ca2.crt\"" start_server || exit 1
R=$(probe resume --count 1 --mech tls13 --sess-in "$T/req.tls13" --path /)
expect "a session verified against another CA bundle is not resumed" "$(kv "$R" first_resumed)" 0
stop_server
check_server_log

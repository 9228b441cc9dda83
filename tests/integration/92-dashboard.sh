#!/usr/bin/env bash
# www/status.html in a real browser: headless Chromium loads the dashboard from tessera and lets
# it poll /status for a few (virtual) seconds; the numbers it rendered must agree with /status
# read by curl just before and just after, its charts must be drawn, and a /status the browser
# may not read must show "disconnected" while the page keeps retrying. Its layout, measured over
# the DevTools protocol at 1280, 1400, 1600, 1920 and 800 px with a large status, must keep
# everything inside its card and the page without horizontal scroll.
. "$(dirname "$0")/lib.sh"
# the server side (status JSON over HTTP/2) runs under the sanitizers in 90-status and 63-http2;
# a browser against a sanitized server would only take longer
case $TS_BUILD in
*asan* | *tsan*) ok "the dashboard runs against the release build only # SKIP"; exit 0 ;;
esac
CHROMIUM=${CHROMIUM:-$(command -v chromium || command -v chromium-browser)}
if [ -z "$CHROMIUM" ]; then
    not_ok "chromium is installed (.ci/deps test installs it)"
    exit 1
fi
make_site
cp "$TS_TOP/www/status.html" "$T/www/status.html"
# Chromium trusts exactly the test server's key; it has no other way to trust the test CA here.
SPKI=$(openssl x509 -in "$CERTS/server.crt" -pubkey -noout | openssl pkey -pubin -outform der |
    openssl dgst -sha256 -binary | base64)
BUDGET_MS=5000 # virtual time the page runs: a poll at load, then one a second

# browse NAME PATH: Chromium loads $BASE/PATH, runs it for $BUDGET_MS ms of virtual time (timers
# fire without waiting; time stops while a fetch is pending), then prints the DOM to $T/NAME.html
# and saves $T/NAME.png. It runs under timeout, which puts it in its own process group; whatever
# is left of that group afterwards is killed by its id.
browse() {
    local name=$1 path=$2 pid rc
    mkdir -p "$T/$name.profile" "$T/home"
    HOME=$T/home XDG_CONFIG_HOME=$T/home XDG_CACHE_HOME=$T/home \
        timeout -k 5 $((40 * MULT)) "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-quic \
        --no-first-run --no-default-browser-check --disable-background-networking \
        --disable-component-update --disable-sync --disable-dev-shm-usage --hide-scrollbars \
        --mute-audio --user-data-dir="$T/$name.profile" --ignore-certificate-errors-spki-list="$SPKI" \
        --host-resolver-rules='MAP localhost 127.0.0.1' --window-size=1280,1150 \
        --virtual-time-budget=$BUDGET_MS --screenshot="$T/$name.png" --dump-dom "$BASE/$path" \
        </dev/null >"$T/$name.html" 2>"$T/$name.err" &
    pid=$!
    PIDS+=("$pid")
    wait "$pid"
    rc=$?
    kill -KILL -- "-$pid" 2>/dev/null
    if [ "$rc" -ne 0 ] || ! grep -q '</html>' "$T/$name.html"; then
        echo "# chromium exited with $rc:"
        grep -vE 'dbus|unexpected operator' "$T/$name.err" | tail -5 | sed 's/^/#   /'
        return 1
    fi
}

# fields NAME: "field<TAB>data-value<TAB>text" for every element with a data-field in $T/NAME.html
fields() {
    grep -oE '<[a-z0-9]+ [^<>]*data-field="[^"]*"[^<>]*>[^<]*' "$T/$1.html" | awk '{
        f = v = ""; t = $0; sub(/^[^>]*>/, "", t)
        if (match($0, / data-field="[^"]*"/)) f = substr($0, RSTART + 13, RLENGTH - 14)
        if (match($0, / data-value="[^"]*"/)) v = substr($0, RSTART + 13, RLENGTH - 14)
        print f "\t" v "\t" t }'
}
# flat FILE: "path<TAB>value" for every scalar in a /status document, paths joined with dots
flat() { jq -r 'paths(scalars) as $p | [($p | map(tostring) | join(".")), getpath($p)] | @tsv' "$1"; }
# load ARRAY FILE [text]: ARRAY[path] = the second column (or the third) of the first row for
# each path in a TSV file
load() {
    local -n arr=$1
    local k v t
    while IFS=$'\t' read -r k v t; do
        [ -n "${arr[$k]+set}" ] && continue
        # shellcheck disable=SC2004 # arr is associative: $k is a key, not arithmetic
        if [ -n "${3:-}" ]; then arr[$k]=$t; else arr[$k]=$v; fi
    done <"$2"
}
attr() { sed -nE "s/.*<$2 [^>]*$3=\"([^\"]*)\".*/\1/p" "$T/$1.html" | head -1; }
# quiet FILE: waits (bounded) until only the status request itself is open, then saves /status
quiet() {
    for _ in $(seq 1 $((100 * MULT))); do
        tcurl "$BASE/status" >"$1"
        [ "$(jq '.connections.active == 1 and .connections.handshaking == 0' "$1")" = true ] && return 0
        sleep 0.05
    done
    not_ok "the server became quiet before $1 was saved"
}

AUTH=", \"client_auth\": \"optional\", \"client_ca\": \"$CERTS/ca.crt\", \"client_crl\": \"$CERTS/ca.crl\""
TLS_EXTRA="$AUTH" start_server || exit 1

# --- known traffic
probe get --keepalive 20 --path /hello.txt >/dev/null
probe get --keepalive 3 --path /missing.html >/dev/null
probe resume --count 11 --mech tls13 >/dev/null
probe resume --count 6 --mech tls12-id >/dev/null
timeout 5 curl -s "http://127.0.0.1:$PORT/" -o /dev/null
timeout 5 openssl s_client -connect "127.0.0.1:$PORT" -tls1_1 -cipher 'DEFAULT:@SECLEVEL=0' </dev/null >/dev/null 2>&1
tcurl --cert "$CERTS/client.crt" --key "$CERTS/client.key" -o /dev/null "$BASE/hello.txt"
tcurl --cert "$CERTS/client-expired.crt" --key "$CERTS/client-expired.key" -o /dev/null "$BASE/hello.txt"
quiet "$T/a.json"

# --- the dashboard, live
t0=$(date +%s%N)
if browse page status.html; then ok "chromium renders the dashboard"; else
    not_ok "chromium renders the dashboard"
    exit 1
fi
wall_ms=$((($(date +%s%N) - t0) / 1000000))
tcurl "$BASE/status" >"$T/b.json"
flat "$T/a.json" >"$T/a.tsv"
flat "$T/b.json" >"$T/b.tsv"
fields page >"$T/page.tsv"
declare -A A B P PT # /status before and after, the page's values and texts
load A "$T/a.tsv"
load B "$T/b.tsv"
load P "$T/page.tsv"
load PT "$T/page.tsv" text
echo "# chromium took ${wall_ms} ms for ${BUDGET_MS} ms of virtual time; $(wc -l <"$T/page.tsv") fields on the page"

polls=$(attr page body data-polls)
expect "the page says it is live" "$(attr page body data-state)" live
expect "the page polled at least 4 times ($polls)" "$((${polls:-0} >= 4))" 1
expect_match "the footer counts the polls" "$(grep -oE '<span id="polls">[0-9]+' "$T/page.html")" ">$polls\$"
expect "no failed polls" "$(attr page body data-failures)" ""
# Chromium takes h2 when the server offers it: the page and its polls came over HTTP/2
expect "chromium loaded the dashboard over HTTP/2" "$((${B[http2.connections_h2]:-0} > ${A[http2.connections_h2]:-0}))" 1
expect "...and polled /status over it" "$((${B[http2.requests_h2]:-0} - ${A[http2.requests_h2]:-0} >= ${polls:-1}))" 1

# every scalar /status reports is on the page (a worker's id is its row label)
missing=$(awk -F'\t' 'NR == FNR { p[$1]; next } !($1 in p) && $1 !~ /^workers\.[0-9]+\.id$/ { print $1 }' "$T/page.tsv" "$T/b.tsv")
expect "the page shows every field of /status" "$missing" ""
# every number has an id (path with dots as dashes) and shows its raw value, formatted
ids=$(grep -oE ' id="[^"]*"' "$T/page.html" | awk -F'\t' 'NR == FNR { id[$0]; next }
    { i = $1; gsub(/\./, "-", i); if (!((" id=\"" i "\"") in id) && !seen[$1]++) print $1 }' - "$T/page.tsv")
expect "every field has an element with a stable id" "$ids" ""
bad=$(awk -F'\t' '$2 == "" || $3 == "–" { print $1 " (value \"" $2 "\", text \"" $3 "\")" }' "$T/page.tsv")
expect "every field has a value" "$bad" ""
bad=$(awk -F'\t' '$2 ~ /^[0-9]+$/ && $1 !~ /^derived\.|bytes|uptime|pid/ {
    t = $3; gsub(",", "", t); if (t != $2) print $1 " (value " $2 ", text " $3 ")" }' "$T/page.tsv")
expect "counters are shown as their exact value" "$bad" ""
bad=$(awk -F'\t' '{ if (($1 in v) && v[$1] != $2) print $1; v[$1] = $2 }' "$T/page.tsv" | sort -u)
expect "a field shown twice shows the same value" "$bad" ""

# values that cannot move while the page polls: the same as curl read before and after, and
# what the traffic above made
for f in server.name server.version server.pid server.workers server.started_at tls.client_certs.mode \
    tls.handshakes.resumed tls.resumptions.tls13_ticket tls.resumptions.tls12_ticket \
    tls.resumptions.tls12_session_id tls.handshakes.failure_reasons.http_on_tls_port \
    tls.handshakes.failure_reasons.protocol_version tls.handshakes.failure_reasons.timeout tls.protocols.TLSv1.2 \
    tls.client_certs.verified tls.client_certs.rejected tls.client_certs.reasons.expired \
    tls.client_certs.reasons.untrusted_issuer requests.status.4xx requests.status.5xx connections.rejected \
    timeouts.handshake tls.session_cache.capacity; do
    if [ "${A[$f]-}" = "${P[$f]-}" ] && [ "${P[$f]-}" = "${B[$f]-}" ]; then ok "$f on the page is /status's (${P[$f]-})"; else
        not_ok "$f: before ${A[$f]-}, page ${P[$f]-}, after ${B[$f]-}"
    fi
done
# Chromium abandons its first handshakes when the server asks for a client certificate (it
# picks one, here none, and reconnects): failures by peer_closed. They happen as the page loads,
# so these match between the page's last poll and the read after.
for f in tls.handshakes.failed tls.handshakes.failure_reasons.peer_closed; do
    if [ "${P[$f]-}" = "${B[$f]-}" ]; then ok "$f on the page is /status's after (${P[$f]-})"; else
        not_ok "$f: page ${P[$f]-}, after ${B[$f]-}"
    fi
done
expect "Chromium's abandoned handshakes are all peer_closed" \
    "$((${B[tls.handshakes.failed]-} - ${A[tls.handshakes.failed]-}))" \
    "$((${B[tls.handshakes.failure_reasons.peer_closed]-} - ${A[tls.handshakes.failure_reasons.peer_closed]-}))"
reasons=$(awk -F'\t' '$1 ~ /^tls\.handshakes\.failure_reasons\./ && !s[$1]++ { n += $2 } END { print n }' "$T/page.tsv")
expect "failed handshakes on the page = the sum of its reasons" "$reasons" "${P[tls.handshakes.failed]-}"
expect "resumptions by TLS 1.3 ticket" "${P[tls.resumptions.tls13_ticket]-}" 10
expect "resumptions by TLS 1.2 session ID" "${P[tls.resumptions.tls12_session_id]-}" 5
expect "resumed handshakes" "${P[tls.handshakes.resumed]-}" 15
expect "failed handshakes: one plain HTTP, one TLS 1.1" "${P[tls.handshakes.failure_reasons.http_on_tls_port]-} ${P[tls.handshakes.failure_reasons.protocol_version]-}" "1 1"
expect "client certificates: one verified, one rejected as expired" "${P[tls.client_certs.verified]-} ${P[tls.client_certs.rejected]-} ${P[tls.client_certs.reasons.expired]-}" "1 1 1"
expect "4xx: the three misses" "${P[requests.status.4xx]-}" 3
expect "client-auth mode" "${PT[tls.client_certs.mode]-}" optional
rows=$(grep -oE '<tr data-worker="[0-9]+"' "$T/page.html" | wc -l)
expect "one worker row per worker" "$rows $(attr page 'table id="workers-table"' data-rows)" "$(jq .server.workers "$T/b.json") $(jq '.workers | length' "$T/b.json")"

# values that move: between the two curl reads, each counter within a small tolerance
bad=$(LC_ALL=C join -t $'\t' <(LC_ALL=C sort "$T/a.tsv") <(cut -f1,2 "$T/page.tsv" | LC_ALL=C sort -u -t $'\t' -k1,1) |
    LC_ALL=C join -t $'\t' - <(LC_ALL=C sort "$T/b.tsv") | awk -F'\t' '$2 ~ /^[0-9]+$/ && $1 !~ /(active|idle|handshaking|in_flight|streams_open|queue_depth|entries|^workers\.[0-9]+\.connections)$/ {
        if (!($2 <= $3 && $3 <= $4)) print $1 ": before " $2 ", page " $3 ", after " $4 }')
expect "every counter on the page is between the reads before and after" "$bad" ""
tot_a=${A[requests.total]-} tot_p=${P[requests.total]-} tot_b=${B[requests.total]-}
expect "requests.total: the page load and each poll since the read before" "$((tot_p - tot_a >= polls + 1 && tot_p - tot_a <= polls + 3))" 1
expect "requests.total: the read after is within 3 of the page ($tot_p, $tot_b)" "$((tot_b - tot_p >= 1 && tot_b - tot_p <= 3))" 1
expect "handshakes.full: within 3 of the read after" "$((${B[tls.handshakes.full]-} - ${P[tls.handshakes.full]-} <= 3))" 1
wsum=$(awk -F'\t' '$1 ~ /^workers\.[0-9]+\.requests$/ { s += $2 } END { print s }' "$T/page.tsv")
expect "per-worker requests on the page add up to its requests.total" "$wsum" "$tot_p"
expect "open connections: just the page's" "${P[connections.active]-}" 1
expect "uptime is between the reads" "$((${A[server.uptime_s]-} <= ${P[server.uptime_s]-} && ${P[server.uptime_s]-} <= ${B[server.uptime_s]-}))" 1

# derived values: the page's own polls are the only traffic, one a second
rate=${P[derived.request_rate]-}
expect "request rate is about the one poll a second ($rate/s)" "$(awk -v r="$rate" 'BEGIN { print (r >= 0.5 && r <= 2) }')" 1
expect "request rate is shown with one decimal" "${PT[derived.request_rate]-}" "$(awk -v r="$rate" 'BEGIN { printf "%.1f", r }')"
wr=$(awk -F'\t' '$1 ~ /^derived\.workers\.[0-9]+\.rate$/ { s += $2 } END { printf "%.9f", s }' "$T/page.tsv")
expect "per-worker rates add up to the request rate" "$(awk -v a="$wr" -v b="$rate" 'BEGIN { d = a - b; print (d < 1e-3 && d > -1e-3) }')" 1
full=${P[tls.handshakes.full]-} res=${P[tls.handshakes.resumed]-}
expect "handshakes completed = full + resumed" "${P[derived.handshakes_completed]-}" "$((full + res))"
expect "resumption ratio = resumed / (full + resumed)" "${PT[derived.resumption_ratio]-}" \
    "$(awk -v r="$res" -v f="$full" 'BEGIN { printf "%.1f %%", 100 * r / (r + f) }')"

# charts
for c in rate-chart workers-chart; do
    drawn=$(attr page "canvas id=\"$c\"" data-drawn) inked=$(attr page "canvas id=\"$c\"" data-inked)
    expect "$c is redrawn at every poll" "${drawn:-0}" "$polls"
    expect "$c has ink ($inked sampled pixels)" "$((${inked:-0} > 300))" 1
done
size=$(stat -c %s "$T/page.png" 2>/dev/null || echo 0)
expect "screenshot is a PNG of a real page ($size bytes)" "$(head -c 4 "$T/page.png" | tail -c 3)$((size > 40000))" PNG1

stop_server
expect "server exits 0" "$?" 0

# --- with sites configured, a row per site, the default site first
TOP_EXTRA='"server_names": ["localhost"], "sites": [{"server_names": ["b.test"], "root": "'"$T/www"'",
    "certificates": [{"certificate": "'"$CERTS/server.crt"'", "key": "'"$CERTS/server.key"'"}]}],' \
    start_server || exit 1
if browse sites status.html; then ok "chromium renders the dashboard with sites"; else not_ok "chromium renders the dashboard with sites"; fi
expect "the sites card is shown" "$(grep -cE '<div class="card[^"]*" id="sites-card">' "$T/sites.html")" 1
for i in 0 1; do
    want=$(tcurl "$BASE/status" | jq -r ".sites[$i].name")
    expect "site row $i names its site ($want)" "$(grep -oE "id=\"sites-$i-name\"[^>]*>[^<]*" "$T/sites.html" | sed 's/.*>//')" "$want"
done
expect_match "...with the default site's requests counted" "$(grep -oE 'id="sites-0-requests"[^>]*data-value="[0-9]+"' "$T/sites.html")" 'data-value="[1-9][0-9]*"'
stop_server
expect "server exits 0" "$?" 0
expect "without sites the card stays hidden" "$(grep -cE '<div class="card[^"]*" id="sites-card" hidden' "$T/page.html")" 1

# --- the layout at 1280, 1400, 1600 and 1920 px wide: no horizontal scroll, every element and
# text inside its card, no table scrolling inside one, table columns apart; at 800 px the same,
# except that a table may scroll inside its card. tests/tools/dashlayout.py drives headless
# Chromium over the DevTools protocol and measures each width once the page has rendered its
# data. The status is made large: several sites with long names (/status cuts the longest to 63
# characters), traffic on them, failed handshakes, a refused reload with a long message; then the
# same status with every counter at a busy server's year (tens of billions of requests, tens
# of TiB; the page reads it from a file, with ?status=).
WIDTHS=1280,1400,1600,1920 NARROW=800
if ! /usr/bin/python3 -c 'import websocket' 2>/dev/null; then
    not_ok "python3-websocket is installed (.ci/deps test installs it)"
    exit 1
fi
LONG=(assets-and-downloads.eu-west-1.production.example-corporation.com
    api.internal-customer-portal.staging.example.org
    static-content-delivery-origin.tessera-test.example.net)
site() { # NAME [EXTRA]
    printf '{"server_names": ["%s"], "root": "%s", "certificates": [{"certificate": "%s", "key": "%s"}]%s}' \
        "$1" "$T/www" "$CERTS/server.crt" "$CERTS/server.key" "${2:-}"
}
SITES="$(site "${LONG[0]}" ", \"client_auth\": \"optional\", \"client_ca\": \"$CERTS/ca.crt\""), $(site "${LONG[1]}"), $(site "${LONG[2]}")"
TOP_EXTRA="\"server_names\": [\"localhost\"], \"sites\": [$SITES]," ALLOWED_ERRORS='reload failed: ' start_server || exit 1
probe get --keepalive 500 --path /hello.txt >/dev/null
for n in "${LONG[@]}"; do # the certificate is not for these names: -k
    curl -sSk --http1.1 --max-time $((20 * MULT)) --resolve "$n:$PORT:127.0.0.1" -o /dev/null "https://$n:$PORT/hello.txt?[1-40]"
done
timeout 5 curl -s "http://127.0.0.1:$PORT/" -o /dev/null
timeout 5 openssl s_client -connect "127.0.0.1:$PORT" -tls1_1 -cipher 'DEFAULT:@SECLEVEL=0' </dev/null >/dev/null 2>&1
jq --arg k "/etc/tessera/keys/${LONG[1]}/2026-11-rotation/privkey.pem" '.sites[1].certificates[0].key = $k' \
    "$T/tessera.json" >"$T/broken.json" && mv "$T/broken.json" "$T/tessera.json"
kill -HUP "$SERVER_PID"
refused() { [ "$(tcurl "$BASE/status" | jq .reload.failed)" = 1 ]; }
wait_until 10 refused
quiet "$T/large.json"
expect "the large status: 4 sites, a refused reload's message" \
    "$(jq '[(.sites | length), (.reload.last_error | length > 100), (.requests.total > 600)]' -c "$T/large.json")" "[4,true,true]"
# a busy server's year: counters in the tens of billions (bytes in the tens of TiB), gauges
# in the tens of thousands, the session cache full, up a year; identities (pid, worker count
# and ids, reload generation, capacities, key count) as they are
jq -f /dev/stdin "$T/large.json" >"$T/www/status-year.json" <<'JQ'
reduce paths(numbers) as $p (.;
    ($p | map(tostring) | join(".")) as $k
    | if $k | test("^server\\.(pid|workers)$|^workers\\.[0-9]+\\.id$|^reload\\.generation$|capacity$|max_bytes$|keys\\.keys$") then .
      elif $k | test("(^bytes|\\.bytes)$") then setpath($p; (getpath($p) + 1) * 10000000019)
      elif $k | test("(active|idle|handshaking|in_flight|streams_open|queue_depth|entries|workers\\.[0-9]+\\.connections)$") then
          setpath($p; (getpath($p) + 1) * 10007 + ($k | length))
      else setpath($p; (getpath($p) + 1) * 100000007 + ($k | length) * 7919) end)
| .tls.session_cache.entries = .tls.session_cache.capacity - 17
| .tls.session_cache.bytes = .tls.session_cache.max_bytes - 40961
| .server.uptime_s = 31557600 + 4321
JQ
expect "...and a year of it: 10^10 requests and more, 10^13 bytes sent, every failure reason above 10^7" \
    "$(jq -c '[.requests.total > 1e10, .bytes.sent > 1e13, ([.tls.handshakes.failure_reasons[]] | min > 1e7)]' "$T/www/status-year.json")" \
    "[true,true,true]"

# dashlayout.py at every width, for the live status and the year: one JSON line per page and
# width in $T/layout.jsonl, a PNG in $T/layout/ of each width where something was found; run
# under timeout like browse, and what is left of its process group killed after
timeout -k 5 $((150 * MULT)) "$TS_TOP/tests/tools/dashlayout.py" --chromium "$CHROMIUM" \
    --profile "$T/layout.profile" --spki "$SPKI" --widths "$WIDTHS" --narrow "$NARROW" \
    --page live "$BASE/status.html" --page year "$BASE/status.html?status=/status-year.json" \
    --sites 4 --polls 2 --timeout $((20 * MULT)) --shots "$T/layout" </dev/null >"$T/layout.jsonl" 2>"$T/layout.err" &
pid=$!
PIDS+=("$pid")
wait "$pid"
rc=$?
kill -KILL -- "-$pid" 2>/dev/null
expect "dashlayout.py measured the dashboard at $WIDTHS and $NARROW px" "$rc" 0
[ "$rc" -eq 0 ] || tail -5 "$T/layout.err" | sed 's/^/#   /'
# some LIST: the first entries of a list
some() { jq -r ".$1[:6][] | \"#   \" + ."; }
while read -r m; do
    name="$(jq -r .page <<<"$m") $(jq .width <<<"$m") px" narrow=$(jq .narrow <<<"$m")
    expect "$name: the data rendered (live, $(jq .polls <<<"$m") polls, $(jq .sites <<<"$m") site rows, requests.total $(jq -r .requests_total <<<"$m"))" \
        "$(jq .rendered <<<"$m")" true
    sw=$(jq .scroll_width <<<"$m") iw=$(jq .inner_width <<<"$m") cw=$(jq .client_width <<<"$m")
    expect "$name: no horizontal scroll (scrollWidth $sw <= innerWidth $iw, and <= $cw beside the scrollbar)" \
        "$((sw <= iw && sw <= cw))" 1
    n=$(jq '.outside | length' <<<"$m")
    if [ "$n" -eq 0 ]; then ok "$name: every element and text inside its card ($(jq .boxes <<<"$m") boxes in $(jq .cards <<<"$m") cards)"; else
        not_ok "$name: $n boxes outside their card"
        jq -r '.outside | group_by(split(": ")[0]) | .[] | "#   \(.[0]) (and \(length - 1) more in that card)"' <<<"$m"
    fi
    n=$(jq '.crowded | length' <<<"$m")
    if [ "$n" -eq 0 ]; then ok "$name: the columns of every table are 8 px apart at least"; else
        not_ok "$name: $n pairs of table cells closer than 8 px"
        some crowded <<<"$m"
    fi
    n=$(jq '.scrollers | length' <<<"$m")
    if [ "$narrow" = true ]; then
        [ "$n" -eq 0 ] || echo "# $name: $(jq -r '.scrollers | join("; ")' <<<"$m") (scrolls inside its card)"
    elif [ "$n" -eq 0 ]; then ok "$name: no table scrolls inside its card"; else
        not_ok "$name: $n elements scroll inside their card"
        some scrollers <<<"$m"
    fi
done <"$T/layout.jsonl"
expect "a measure for each page and width" "$(jq -r '.page + " " + (.width | tostring)' "$T/layout.jsonl" | paste -sd, -)" \
    "$(for p in live year; do for w in ${WIDTHS//,/ } $NARROW; do printf '%s %s\n' $p "$w"; done; done | paste -sd, -)"
stop_server
expect "server exits 0" "$?" 0

# --- the dashboard where the browser may not read /status: disconnected, and retrying
TOP_EXTRA='"status": { "allow": ["10.0.0.0/8"] },' start_server || exit 1
if browse denied status.html; then ok "chromium renders the dashboard without access to /status"; else
    not_ok "chromium renders the dashboard without access to /status"
    exit 1
fi
expect "the page says it is disconnected" "$(attr denied body data-state)" disconnected
expect_match "...in its status line" "$(grep -oE '<div id="conn-state"[^>]*>[^<]*' "$T/denied.html")" 'disconnected'
expect_match "...and why" "$(grep -oE '<span id="error">[^<]*' "$T/denied.html")" 'HTTP 403'
f=$(attr denied body data-failures)
expect "it kept retrying, once a second (${f:-0} failed polls)" "$((${f:-0} >= 4))" 1
expect "no poll succeeded" "$(attr denied body data-polls)" 0
stop_server
expect "server exits 0" "$?" 0

# --- another status.path: the page served as that path + ".html", or told with ?status=,
# polls it; left at /status.html it says where to look; it polls nothing off this origin
mkdir -p "$T/www/ops"
cp "$TS_TOP/www/status.html" "$T/www/ops/stats.html"
TOP_EXTRA='"status": { "path": "/ops/stats" },' start_server || exit 1
expect "curl: /ops/stats is the status endpoint" "$(tcurl "$BASE/ops/stats" | jq -r .server.name)" tessera
expect "curl: /status is not" "$(tcurl -o /dev/null -w '%{http_code}' "$BASE/status")" 404
expect "curl: /ops/stats.html is the dashboard" "$(tcurl -o /dev/null -w '%{http_code} %{content_type}' "$BASE/ops/stats.html")" \
    "200 text/html; charset=utf-8"
expect "curl: the dashboard fetches no hard-coded /status" "$(tcurl "$BASE/ops/stats.html" | grep -cE 'fetch\("/status"|URL_ = "/status"')" 0
code() { grep -oE '<code id="status-path">[^<]*' "$T/$1.html" | sed 's/.*>//'; }
for v in "moved ops/stats.html" "param status.html?status=/ops/stats"; do
    name=${v%% *} path=${v#* }
    if browse "$name" "$path"; then ok "chromium renders $path"; else not_ok "chromium renders $path"; continue; fi
    expect "$path: live" "$(attr "$name" body data-state)" live
    p=$(attr "$name" body data-polls)
    expect "$path: polled at least 4 times (${p:-0})" "$((${p:-0} >= 4))" 1
    expect "$path: no failed polls" "$(attr "$name" body data-failures)" ""
    expect "$path: the footer names the path it polls" "$(code "$name")" /ops/stats
    expect "$path: shows the server's pid" "$(grep -oE 'data-field="server.pid"[^>]*data-value="[0-9]+"' "$T/$name.html" | grep -oE '[0-9]+"$' | tr -d '"')" "$SERVER_PID"
done
if browse stale status.html; then ok "chromium renders status.html"; else not_ok "chromium renders status.html"; fi
expect "status.html with status.path moved: disconnected" "$(attr stale body data-state)" disconnected
expect_match "...saying what it polled and what to do" "$(grep -oE '<span id="error">[^<]*' "$T/stale.html")" \
    'HTTP 404 from /status \(is status.path another path\? serve this page as that path \+ \.html, or open it with \?status=PATH\)'
n0=$(tcurl "$BASE/ops/stats" | jq .requests.total)
if browse offsite "status.html?status=//localhost:$PORT/ops/stats"; then ok "chromium renders status.html?status=//host/..."; else
    not_ok "chromium renders status.html?status=//host/..."
fi
expect "?status= with another origin: refused, nothing polled" "$(attr offsite body data-state) $(attr offsite body data-polls)" "disconnected 0"
expect_match "...saying why" "$(grep -oE '<span id="error">[^<]*' "$T/offsite.html")" 'must be a path on this server'
expect "...the server saw the page load and this read only" "$(($(tcurl "$BASE/ops/stats" | jq .requests.total) - n0))" 2
stop_server
expect "server exits 0" "$?" 0
check_server_log

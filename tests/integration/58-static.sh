#!/usr/bin/env bash
# What static sites need: ETags and conditional requests, ranges (single, suffix, open,
# unsatisfiable, If-Range, multipart), precompressed sidecars, error pages, Cache-Control,
# HSTS, the http -> https redirect listener, OPTIONS/405/501, directory listings.
. "$(dirname "$0")/lib.sh"
make_site
W=$T/www
printf '0123456789abcdefghij' >"$W/digits.txt"           # 20 bytes
printf 'body { color: #222; margin: 0 auto; }\n%.0s' $(seq 1 40) >"$W/style.css"
gzip -9 -k -c "$W/style.css" >"$W/style.css.gz"
printf 'BROTLI-BYTES' >"$W/style.css.br"                     # content is opaque to the server
mkdir -p "$W/errors" "$W/files/sub" "$W/assets" "$W/.hidden"
printf '<h1>{{status}} {{title}}</h1><p>{{message}}</p><i>custom 404</i>\n' >"$W/errors/404.html"
printf '<h1>{{status}} {{title}}</h1><p>{{message}}</p><i>custom 403</i>\n' >"$W/errors/403.html"
printf 'a\n' >"$W/files/a.txt"
printf 'x\n' >"$W/files/<b>&x\".txt"
printf 'h\n' >"$W/files/.secret"
printf 'asset\n' >"$W/assets/app.js"
RPORT=$(pick_port)
TOP_EXTRA='"hsts": "max-age=600", "cache_control": "public, max-age=60",
    "error_pages": { "404": "/errors/404.html", "403": "/errors/403.html" },
    "http_redirect": { "listen": "127.0.0.1:'$RPORT'" },
    "locations": [ { "path": "/assets/", "cache_control": "public, max-age=31536000, immutable" },
                   { "path": "/files/", "autoindex": true } ],' start_server || exit 1

hdr() { tr -d '\r' <"$T/h" | sed -n "s/^$1: //Ip" | head -1; }
get() { : >"$T/b"; tcurl -D "$T/h" -o "$T/b" -w '%{http_code}' "$@"; }

# --- validators
code=$(get "$BASE/digits.txt")
ETAG=$(hdr ETag)
LM=$(hdr Last-Modified)
expect "200 with an opaque ETag (16 base64url characters)" "$code $(printf '%s' "$ETAG" | grep -cE '^"[A-Za-z0-9_-]{16}"$')" "200 1"
expect_match "Last-Modified present" "$LM" "GMT$"
expect "Accept-Ranges: bytes" "$(hdr Accept-Ranges)" bytes

code=$(get -H "If-None-Match: $ETAG" "$BASE/digits.txt")
expect "If-None-Match with the ETag -> 304" "$code" 304
expect "304 has no body" "$(wc -c <"$T/b")" 0
expect "304 repeats the ETag" "$(hdr ETag)" "$ETAG"
expect "If-None-Match: * -> 304" "$(get -H 'If-None-Match: *' "$BASE/digits.txt")" 304
expect "If-None-Match list containing the ETag -> 304" "$(get -H "If-None-Match: \"nope\", $ETAG" "$BASE/digits.txt")" 304
expect "If-None-Match with the weak form -> 304 (weak comparison)" "$(get -H "If-None-Match: W/$ETAG" "$BASE/digits.txt")" 304
expect "If-None-Match not matching -> 200" "$(get -H 'If-None-Match: "other"' "$BASE/digits.txt")" 200
expect "If-Modified-Since = Last-Modified -> 304" "$(get -H "If-Modified-Since: $LM" "$BASE/digits.txt")" 304
expect "If-Modified-Since in the past -> 200" "$(get -H 'If-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT' "$BASE/digits.txt")" 200
expect "If-Modified-Since invalid -> 200" "$(get -H 'If-Modified-Since: yesterday' "$BASE/digits.txt")" 200
expect "If-None-Match wins over If-Modified-Since" "$(get -H 'If-None-Match: "other"' -H "If-Modified-Since: $LM" "$BASE/digits.txt")" 200
expect "HEAD with If-None-Match -> 304" "$(tcurl -I -o /dev/null -w '%{http_code}' -H "If-None-Match: $ETAG" "$BASE/digits.txt")" 304
touch -d '2001-01-01' "$W/digits.txt"
sleep 1.1 # file_cache.valid_ms: a cached stat is trusted for a second
expect "a changed file no longer matches the old ETag" "$(get -H "If-None-Match: $ETAG" "$BASE/digits.txt")" 200
ETAG=$(hdr ETag)
LM=$(hdr Last-Modified)

# --- ranges
expect "bytes=0-4 -> 206" "$(get -H 'Range: bytes=0-4' "$BASE/digits.txt") $(cat "$T/b")" "206 01234"
expect "...Content-Range" "$(hdr Content-Range)" "bytes 0-4/20"
expect "...Content-Length" "$(hdr Content-Length)" 5
expect "suffix bytes=-3" "$(get -H 'Range: bytes=-3' "$BASE/digits.txt") $(cat "$T/b") $(hdr Content-Range)" "206 hij bytes 17-19/20"
expect "open-ended bytes=15-" "$(get -H 'Range: bytes=15-' "$BASE/digits.txt") $(cat "$T/b") $(hdr Content-Range)" "206 fghij bytes 15-19/20"
expect "end past the file is clamped" "$(get -H 'Range: bytes=18-100' "$BASE/digits.txt") $(cat "$T/b")" "206 ij"
expect "unsatisfiable -> 416" "$(get -H 'Range: bytes=20-' "$BASE/digits.txt")" 416
expect "...with Content-Range: bytes */20" "$(hdr Content-Range)" "bytes */20"
expect "bytes=-0 is unsatisfiable" "$(get -H 'Range: bytes=-0' "$BASE/digits.txt")" 416
expect "a malformed Range is ignored -> 200" "$(get -H 'Range: bytes=5-2' "$BASE/digits.txt") $(wc -c <"$T/b")" "200 20"
expect "another unit is ignored -> 200" "$(get -H 'Range: items=0-1' "$BASE/digits.txt")" 200
expect "If-Range with the current ETag -> 206" "$(get -H 'Range: bytes=0-1' -H "If-Range: $ETAG" "$BASE/digits.txt")" 206
expect "If-Range with a stale ETag -> whole file" "$(get -H 'Range: bytes=0-1' -H 'If-Range: "stale"' "$BASE/digits.txt") $(wc -c <"$T/b")" "200 20"
expect "If-Range with Last-Modified -> 206" "$(get -H 'Range: bytes=0-1' -H "If-Range: $LM" "$BASE/digits.txt")" 206
expect "If-Range with another date -> whole file" "$(get -H 'Range: bytes=0-1' -H 'If-Range: Sun, 06 Nov 1994 08:49:37 GMT' "$BASE/digits.txt")" 200
code=$(get -H 'Range: bytes=0-1,10-11,-2' "$BASE/digits.txt")
expect "several ranges -> 206 multipart/byteranges" "$code $(hdr Content-Type | cut -d';' -f1)" "206 multipart/byteranges"
B=$(hdr Content-Type | sed 's/.*boundary=//')
body=$(tr -d '\r' <"$T/b")
expect "...three parts" "$(printf '%s' "$body" | grep -c "^--$B$")" 3
expect_match "...each with its Content-Range and bytes" "$(printf '%s' "$body" | tr '\n' '|')" "Content-Range: bytes 0-1/20\|\|01\|--$B\|Content-Type: text/plain; charset=utf-8\|Content-Range: bytes 10-11/20\|\|ab\|--$B\|.*bytes 18-19/20\|\|ij\|--$B--"
expect "...Content-Length matches the body" "$(hdr Content-Length)" "$(wc -c <"$T/b")"
expect "overlapping ranges are merged into one" "$(get -H 'Range: bytes=0-5,3-9' "$BASE/digits.txt") $(hdr Content-Range)" "206 bytes 0-9/20"
many=$(for i in $(seq 0 16); do printf '%s%d-%d' "${i:+,}" "$i" "$i"; done | sed 's/^,//')
expect "more than 16 ranges -> the whole file" "$(get -H "Range: bytes=$many" "$BASE/digits.txt")" 200
expect "HEAD with a range: 206 headers, no body" "$(tcurl -I -H 'Range: bytes=0-4' -o /dev/null -w '%{http_code} %{size_download}' "$BASE/digits.txt")" "206 0"

# --- precompressed sidecars
code=$(get -H 'Accept-Encoding: gzip' "$BASE/style.css")
expect "gzip accepted -> the .gz sidecar" "$code $(hdr Content-Encoding) $(cmp -s "$T/b" "$W/style.css.gz" && echo same)" "200 gzip same"
expect "...Content-Type of the original" "$(hdr Content-Type)" "text/css; charset=utf-8"
expect "...Vary: Accept-Encoding" "$(hdr Vary)" "Accept-Encoding"
GZ_ETAG=$(hdr ETag)
expect "br preferred when both are accepted" "$(get -H 'Accept-Encoding: gzip, deflate, br' "$BASE/style.css") $(hdr Content-Encoding) $(cat "$T/b")" "200 br BROTLI-BYTES"
expect "q values decide (br;q=0.5, gzip)" "$(get -H 'Accept-Encoding: br;q=0.5, gzip' "$BASE/style.css") $(hdr Content-Encoding)" "200 gzip"
expect "gzip;q=0 and no br -> the plain file" "$(get -H 'Accept-Encoding: gzip;q=0' "$BASE/style.css") $(hdr Content-Encoding)x $(cmp -s "$T/b" "$W/style.css" && echo same)" "200 x same"
expect "...still with Vary" "$(hdr Vary)" "Accept-Encoding"
expect "* covers br" "$(get -H 'Accept-Encoding: *' "$BASE/style.css") $(hdr Content-Encoding)" "200 br"
expect "no Accept-Encoding -> the plain file" "$(get "$BASE/style.css") $(hdr Content-Encoding)x" "200 x"
PLAIN_ETAG=$(hdr ETag)
if [ "$GZ_ETAG" != "$PLAIN_ETAG" ]; then ok "each variant has its own ETag"; else not_ok "variants share an ETag"; fi
expect "If-None-Match on the gzip variant -> 304" "$(get -H 'Accept-Encoding: gzip' -H "If-None-Match: $GZ_ETAG" "$BASE/style.css")" 304
expect "...but not for the plain variant" "$(get -H "If-None-Match: $GZ_ETAG" "$BASE/style.css")" 200
get -H 'Accept-Encoding: gzip' -H 'Range: bytes=0-9' "$BASE/style.css" >/dev/null
expect "ranges apply to the compressed bytes" "$(cmp -s "$T/b" <(head -c 10 "$W/style.css.gz") && echo same) $(hdr Content-Range)" "same bytes 0-9/$(stat -c %s "$W/style.css.gz")"
expect "curl --compressed decodes the gzip variant" "$(tcurl --compressed -H 'Accept-Encoding: gzip' "$BASE/style.css" | cmp -s - "$W/style.css" && echo same)" same

# --- error pages, Cache-Control, HSTS
code=$(get "$BASE/missing.html")
expect "error_pages: 404 is the site's page with status 404" "$code $(cat "$T/b")" "404 <h1>404 Not Found</h1><p>The requested URL was not found on this server.</p><i>custom 404</i>"
code=$(get "$BASE/sub/")
expect_match "error_pages: 403 for a directory without listing" "$code $(cat "$T/b")" "^403 <h1>403 Forbidden</h1><p>Directory listing is not enabled.</p><i>custom 403</i>"
code=$(get "$BASE/nope/../also-missing")
expect "error_pages: a missing file after normalization gets the site's 404" "$code $(grep -c 'custom 404' "$T/b")" "404 1"
expect "Cache-Control: the site default" "$(get "$BASE/digits.txt") $(hdr Cache-Control)" "200 public, max-age=60"
expect "Cache-Control: a location's own" "$(get "$BASE/assets/app.js") $(hdr Cache-Control)" "200 public, max-age=31536000, immutable"
expect "Cache-Control on 304 too" "$(get -H "If-None-Match: $ETAG" "$BASE/digits.txt") $(hdr Cache-Control)" "304 public, max-age=60"
expect "HSTS on a 200" "$(get "$BASE/digits.txt") $(hdr Strict-Transport-Security)" "200 max-age=600"
expect "HSTS on a 404" "$(get "$BASE/nope") $(hdr Strict-Transport-Security)" "404 max-age=600"

# --- methods
expect "OPTIONS -> 204 with Allow" "$(tcurl -X OPTIONS -D "$T/h" -o /dev/null -w '%{http_code}' "$BASE/digits.txt") $(hdr Allow)" "204 GET, HEAD, OPTIONS"
R=$(raw_request 'OPTIONS * HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')
expect_match "OPTIONS * -> 204" "$R" "^HTTP/1.1 204"
expect "PUT -> 405 with Allow" "$(tcurl -X PUT -D "$T/h" -o /dev/null -w '%{http_code}' "$BASE/x") $(hdr Allow)" "405 GET, HEAD, OPTIONS"
R=$(raw_request 'BREW /pot HTTP/1.1\r\nHost: a\r\n\r\n')
expect_match "an unknown method -> 501" "$R" "^HTTP/1.1 501 Not Implemented"
expect "the slash redirect keeps the query" "$(tcurl -o /dev/null -w '%{redirect_url}' "$BASE/files?sort=name")" "$BASE/files/?sort=name"

# --- directory listing
code=$(get "$BASE/files/")
expect "autoindex: a listing" "$code $(hdr Content-Type)" "200 text/html; charset=utf-8"
expect_match "...names are HTML-escaped" "$(cat "$T/b")" '>&lt;b&gt;&amp;x&quot;.txt</a>'
expect_match "...links are percent-encoded" "$(cat "$T/b")" 'href="%3Cb%3E%26x%22.txt"'
expect_match "...directories first, with a slash" "$(cat "$T/b" | tr '\n' ' ')" 'href="sub/">sub/</a>.*href="a.txt"'
expect_no_match "...hidden files are not listed" "$(cat "$T/b")" 'secret'
expect "...and the escaped link works" "$(tcurl "$BASE/files/%3Cb%3E%26x%22.txt")" x
expect "autoindex is per location: elsewhere 403" "$(get "$BASE/sub/")" 403

# --- http_redirect listener
R=$(curl -sS --max-time 5 -D - -o /dev/null "http://localhost:$RPORT/a/b.html?x=1&y=2")
expect_match "http_redirect: 301" "$R" "^HTTP/1.1 301"
expect_match "...to https, same host, the TLS port, path and query" "$R" "Location: https://localhost:$PORT/a/b.html\?x=1&y=2"
expect_no_match "...no HSTS over plain HTTP" "$R" "Strict-Transport-Security"
expect_match "...for any method" "$(curl -sS --max-time 5 -X POST -D - -o /dev/null "http://127.0.0.1:$RPORT/p")" "Location: https://127.0.0.1:$PORT/p"
expect_match "...and an IPv6 Host" "$(curl -sS --max-time 5 -H 'Host: [::1]:8080' -D - -o /dev/null "http://127.0.0.1:$RPORT/v6")" "Location: https://\[::1\]:$PORT/v6"
R=$(printf 'GET / HTTP/1.0\r\n\r\n' | timeout 5 bash -c "exec 3<>/dev/tcp/127.0.0.1/$RPORT; cat >&3; cat <&3")
expect_match "...a request without Host -> 400" "$R" "^HTTP/1.1 400"
expect "...and nothing else is served there" "$(curl -sS --max-time 5 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$RPORT/digits.txt")" 301
stop_server
expect "server exits 0" "$?" 0
check_server_log

# configuration errors
cfgerr() {
    TOP_EXTRA=$2 write_config
    OUT=$(oneshot "$TS_BIN" --config "$T/tessera.json" --check-config)
    if [ $? = 2 ] && printf '%s' "$OUT" | grep -qF -- "$3"; then ok "$1 -> exit 2 naming $3"; else not_ok "$1 ($OUT)"; fi
}
cfgerr "missing error page" '"error_pages": { "404": "/none.html" },' "error_pages.404: $T/www/none.html"
cfgerr "error page for a non-error status" '"error_pages": { "200": "/x.html" },' "error_pages.200: not an error status"
cfgerr "bad redirect listener" '"http_redirect": { "listen": "nowhere" },' "http_redirect.listen"
cfgerr "a Cache-Control with a line break" '"cache_control": "a\nb",' "cache_control: not a valid header value"

#!/usr/bin/env bash
# Answers to HEAD carry no body, errors included (framing proven by pipelining); absolute-form
# targets; access rules applied to where a symlink really leads; hidden files (dotfiles);
# ETags that hold no inode and survive a restart.
. "$(dirname "$0")/lib.sh"
make_site
W=$T/www
mkdir -p "$W/private" "$W/public" "$W/.git" "$W/.well-known/acme-challenge" "$W/sub"
printf 'private area\n' >"$W/private/index.html"
printf 'secret\n' >"$W/private/secret.txt"
printf 'GZSECRET' >"$W/private/blob.gz"
printf 'public page\n' >"$W/public/page.txt"
ln -s ../private/secret.txt "$W/public/link"
ln -s ../private "$W/public/dirlink"
ln -s ../private/blob.gz "$W/public/page.txt.gz" # a sidecar that leads into private/
printf '[core]\n' >"$W/.git/config"
printf 'token\n' >"$W/.well-known/acme-challenge/x"
printf 'hidden\n' >"$W/.well-known/.hidden"
printf 'KEY=1\n' >"$W/sub/.env"
ln -s .git/config "$W/ok.txt"

CA=$CERTS/ca.crt
AUTH=", \"client_auth\": \"optional\", \"client_ca\": \"$CA\""
LOC='"locations": [ { "path": "/private/", "require_client_cert": true } ],'

# frames FILE METHOD...: reads the responses to the given requests in order, each as
# STATUS/Content-Length (a body is skipped unless the request was HEAD), then rest=BYTES left
# over. A body after a HEAD answer shows up as "bad" or a non-zero rest.
frames() {
    perl -e '
        local $/; open(my $f, "<", shift @ARGV) or die; my $d = <$f>; $d //= "";
        my @out;
        for my $m (@ARGV) {
            my $i = index($d, "\r\n\r\n");
            if ($i < 0 || $d !~ /^HTTP\/1\.1 (\d{3}) /) { push @out, "bad"; last }
            my $st = $1; my $h = substr($d, 0, $i + 4); $d = substr($d, $i + 4);
            my ($cl) = $h =~ /\r\ncontent-length: *(\d+)\r\n/i; $cl //= "none";
            my $bl = ($m eq "HEAD" || $st == 304 || $st == 204 || $cl eq "none") ? 0 : $cl;
            $d = length($d) >= $bl ? substr($d, $bl) : "";
            push @out, "$st/$cl";
        }
        push @out, "rest=" . length($d);
        print join(" ", @out);
    ' "$@"
}
raw() { raw_request "$1" >"$T/raw"; }
H='Host: localhost\r\n'
CLOSE='GET /hello.txt HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n'

TLS_EXTRA=$AUTH TOP_EXTRA=$LOC start_server || exit 1

### HEAD: never a body
raw "GET /missing HTTP/1.1\r\n${H}Connection: close\r\n\r\n"
GET404=$(frames "$T/raw" GET)
expect_match "GET /missing: a 404 with a body" "$GET404" '^404/[1-9][0-9]* rest=0$'
raw "HEAD /missing HTTP/1.1\r\n$H\r\n$CLOSE"
expect "HEAD /missing then GET on one connection: two well-framed responses, the 404's Content-Length as for GET" \
    "$(frames "$T/raw" HEAD GET)" "${GET404% rest=0} 200/6 rest=0"
expect_match "...and the GET's body follows the HEAD's header block directly" "$(tr -d '\r' <"$T/raw")" \
    $'Cache-Control: no-store\n\nHTTP/1\\.1 200'
raw "HEAD /private/secret.txt HTTP/1.1\r\n$H\r\n$CLOSE"
expect_match "HEAD on a protected file: 403 headers only, then the next response" \
    "$(frames "$T/raw" HEAD GET)" '^403/[1-9][0-9]* 200/6 rest=0$'
raw "HEAD /.git/config HTTP/1.1\r\n$H\r\n$CLOSE"
expect_match "HEAD on a hidden file: 404 headers only" "$(frames "$T/raw" HEAD GET)" '^404/[1-9][0-9]* 200/6 rest=0$'
raw "HEAD /hello.txt HTTP/1.1\r\n$H\r\n$CLOSE"
expect "HEAD on a file: 200 headers only" "$(frames "$T/raw" HEAD GET)" "200/6 200/6 rest=0"
raw "HEAD /hello.txt HTTP/1.1\r\n${H}Content-Length: 5\r\n\r\nhello"
expect_match "HEAD with a body: 413 headers only" "$(frames "$T/raw" HEAD)" '^413/[1-9][0-9]* rest=0$'
raw "HEAD /hello.txt HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
expect_match "HEAD with a chunked body: 413 headers only" "$(frames "$T/raw" HEAD)" '^413/[1-9][0-9]* rest=0$'
raw "HEAD /$(printf 'a%.0s' $(seq 1 5000)) HTTP/1.1\r\n$H\r\n"
expect_match "HEAD with a target too long: 414 headers only" "$(frames "$T/raw" HEAD)" '^414/[1-9][0-9]* rest=0$'
raw "HEAD / HTTP/1.1\r\n${H}X-Big: $(printf 'b%.0s' $(seq 1 9000))\r\n\r\n"
expect_match "HEAD with a header too large: 431 headers only" "$(frames "$T/raw" HEAD)" '^431/[1-9][0-9]* rest=0$'
raw "HEAD / HTTP/1.1\r\n${H}Host: other\r\n\r\n"
expect_match "HEAD with two Hosts (parse error): 400 headers only" "$(frames "$T/raw" HEAD)" '^400/[1-9][0-9]* rest=0$'
raw "HEAD /a%2fb HTTP/1.1\r\n$H\r\n"
expect_match "HEAD with an encoded slash: 400 headers only" "$(frames "$T/raw" HEAD)" '^400/[1-9][0-9]* rest=0$'
raw "HEAD / HTTP/1.1\r\n\r\n"
expect_match "HEAD without Host: 400 headers only" "$(frames "$T/raw" HEAD)" '^400/[1-9][0-9]* rest=0$'
raw "POST /hello.txt HTTP/1.1\r\n${H}Connection: close\r\n\r\n"
expect_match "POST still gets its 405 page" "$(frames "$T/raw" POST)" '^405/[1-9][0-9]* rest=0$'

### absolute-form
raw "GET https://localhost:$PORT/hello.txt?x HTTP/1.1\r\n${H}Connection: close\r\n\r\n"
expect "absolute-form with a port and a query" "$(frames "$T/raw" GET) $(tail -c 6 "$T/raw")" "200/6 rest=0 hello"
raw "GET HTTP://LOCALHOST?x=/hello.txt HTTP/1.1\r\n${H}Connection: close\r\n\r\n"
expect_match "absolute-form with a query right after the authority is the root" "$(cat "$T/raw")" 'home page'
raw "GET http://localhost HTTP/1.1\r\n${H}Connection: close\r\n\r\n"
expect_match "absolute-form without a path is the root" "$(cat "$T/raw")" 'home page'

### locations apply to where a symlink leads
code() { tcurl -o "$T/body" -w '%{http_code}' "$@"; }
CERT=(--cert "$CERTS/client.crt" --key "$CERTS/client.key")
expect "the protected file itself without a certificate -> 403" "$(code "$BASE/private/secret.txt")" 403
expect "a symlink into the protected area without a certificate -> 403" "$(code "$BASE/public/link")" 403
expect "...with a certificate -> 200" "$(code "${CERT[@]}" "$BASE/public/link") $(cat "$T/body")" "200 secret"
expect "a file through a symlinked directory without a certificate -> 403" "$(code "$BASE/public/dirlink/secret.txt")" 403
expect "the symlinked directory's index without a certificate -> 403" "$(code "$BASE/public/dirlink/")" 403
expect "the symlinked directory without its slash -> 403, not a redirect" "$(code "$BASE/public/dirlink")" 403
expect "...with a certificate -> 200" "$(code "${CERT[@]}" "$BASE/public/dirlink/secret.txt") $(cat "$T/body")" "200 secret"
expect "HEAD through the symlink -> 403" "$(code -I "$BASE/public/link")" 403
H2=$(tcurl -D - -o "$T/body" -H 'Accept-Encoding: gzip' "$BASE/public/page.txt")
expect_no_match "a sidecar leading into the protected area is not sent without a certificate" "$H2" '[Cc]ontent-[Ee]ncoding'
expect "...the plain file is" "$(cat "$T/body")" "public page"
H2=$(tcurl -D - -o "$T/body" -H 'Accept-Encoding: gzip' "${CERT[@]}" "$BASE/public/page.txt")
expect "...and with a certificate the sidecar is" "$(cat "$T/body")" "GZSECRET"

### dotfiles (default "deny")
expect "/.git/config -> 404" "$(code "$BASE/.git/config")" 404
expect "/%2egit/config -> 404" "$(code "$BASE/%2egit/config")" 404
expect "/.git/ -> 404" "$(code "$BASE/.git/")" 404
expect "/.git -> 404, not a redirect" "$(code "$BASE/.git")" 404
expect "/sub/.env -> 404" "$(code "$BASE/sub/.env")" 404
expect "/sub/./.env -> 404" "$(code --path-as-is "$BASE/sub/./.env")" 404
expect "/ok.txt, a symlink to .git/config -> 404" "$(code "$BASE/ok.txt")" 404
expect "/.well-known/acme-challenge/x -> 200" "$(code "$BASE/.well-known/acme-challenge/x") $(cat "$T/body")" "200 token"
expect "a hidden file inside /.well-known/ -> 404" "$(code "$BASE/.well-known/.hidden")" 404
expect "/hello.txt still 200" "$(code "$BASE/hello.txt")" 200

### ETag: no inode, the same after a restart
ETAG1=$(tcurl -D - -o /dev/null "$BASE/hello.txt" | tr -d '\r' | sed -n 's/^[Ee][Tt]ag: //p')
INO=$(stat -c %i "$W/hello.txt")
expect_no_match "the ETag holds no inode (hex)" "$ETAG1" "$(printf '%x' "$INO")"
expect_no_match "the ETag holds no inode (decimal)" "$ETAG1" "$INO"
stop_server
check_server_log

RPORT=$(pick_port)
TLS_EXTRA=$AUTH TOP_EXTRA="$LOC \"dotfiles\": \"allow\", \"http_redirect\": { \"listen\": \"127.0.0.1:$RPORT\" }," \
    start_server || exit 1
printf 'HEAD /a HTTP/1.1\r\nHost: localhost\r\n\r\n' |
    timeout $((5 * MULT)) bash -c "exec 3<>/dev/tcp/127.0.0.1/$RPORT; cat >&3; cat <&3" >"$T/raw"
expect_match "HEAD on the plain-HTTP redirect listener: 301 headers only" "$(frames "$T/raw" HEAD)" '^301/[1-9][0-9]* rest=0$'
ETAG2=$(tcurl -D - -o /dev/null "$BASE/hello.txt" | tr -d '\r' | sed -n 's/^[Ee][Tt]ag: //p')
expect "the ETag is the same after a restart" "$ETAG2" "$ETAG1"
expect "dotfiles allow: /.git/config -> 200" "$(code "$BASE/.git/config") $(cat "$T/body")" "200 [core]"
expect "dotfiles allow: /ok.txt -> 200" "$(code "$BASE/ok.txt")" 200
expect "dotfiles allow: a symlink into the protected area is still 403" "$(code "$BASE/public/link")" 403
stop_server
check_server_log

printf '{"root": "%s", "dotfiles": "maybe", "tls": {"certificate": "%s", "key": "%s"}}\n' \
    "$W" "$CERTS/server.crt" "$CERTS/server.key" >"$T/bad.json"
OUT=$(oneshot "$TS_BIN" --config "$T/bad.json" --check-config)
RC=$?
expect "dotfiles \"maybe\" -> exit 2" "$RC" 2
expect_match "...naming the key and its values" "$OUT" 'dotfiles: must be one of "deny", "allow"'

[ "$FAILS" -eq 0 ]

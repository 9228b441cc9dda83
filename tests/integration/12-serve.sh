#!/usr/bin/env bash
# tessera --serve DIR (and make serve DIR=...): a directory of one's own, served from a
# checkout's top directory with the built-in defaults whatever conf/tessera.json says, with the
# development certificate; the URL to open is logged; a missing certificate is named together
# with the command that makes it.
. "$(dirname "$0")/lib.sh"
# a checkout's top directory: certs/ as make certs leaves it, www/, and the shipped
# conf/tessera.json, whose client-auth and error-page settings do not fit another site
top=$T/checkout
mkdir -p "$top/conf" "$T/mysite/sub" "$T/elsewhere"
ln -s "$CERTS" "$top/certs"
ln -s "$TS_TOP/www" "$top/www"
cp "$TS_TOP/conf/tessera.json" "$top/conf/"
printf 'my page\n' >"$T/mysite/index.html"
printf 'deep\n' >"$T/mysite/sub/file.txt"
cd "$top" || exit 1

# --check-config names what it checked, as nginx -t does: the file, or no file at all
OUT=$(oneshot "$TS_BIN" --check-config)
expect "--check-config in a checkout passes" "$?" 0
expect_match "...naming the file it checked, found in the working directory" "$OUT" \
    "^tessera: configuration file conf/tessera\.json is valid \(found in the working directory"

OUT=$(oneshot "$TS_BIN" --root "$T/mysite" --check-config)
expect "--root alone reads conf/tessera.json, whose error_pages refuse the site (exit 2)" "$?" 2
expect_match "...naming the key" "$OUT" "error_pages\.403: $T/mysite/errors/403\.html"
expect_match "...and pointing to --serve" "$OUT" "tessera --serve DIR"

# --serve on a port of ours (retried if another process takes it first, as start_server does)
for _ in 1 2 3; do
    PORT=$(pick_port) || exit 1
    spawn_server "$TS_BIN" --serve "$T/mysite" --listen "127.0.0.1:$PORT" >"$T/spawn.out" && break
    if [ -n "$SERVER_PID" ] || ! grep -q "Address already in use" "$T/error.log"; then
        cat "$T/spawn.out"
        not_ok "tessera --serve starts"
        exit 1
    fi
    LOG_DONE[SERVER_IDX]=retried
done
ok "tessera --serve starts with conf/tessera.json in the working directory"
url="https://localhost:$PORT/"
wait_until 5 grep -qF "serving $T/mysite on $url" "$T/error.log"
expect_match "it logs the URL to open" "$(cat "$T/error.log")" "\[info\] serving $T/mysite on https://localhost:$PORT/ \(try: curl --cacert certs/ca\.crt https://localhost:$PORT/\)"
expect "the URL it logs serves the directory's index" \
    "$(curl -sS --max-time $((20 * MULT)) --cacert "$CERTS/ca.crt" "$url")" "my page"
expect "...and its files" "$(tcurl "$BASE/sub/file.txt")" deep
expect "a missing file is the built-in 404 (no error_pages)" \
    "$(tcurl -o "$T/404.html" -w '%{http_code}' "$BASE/nope.html") $(grep -c '/errors/' "$T/404.html")" "404 0"
expect "no client certificate is asked for (conf/tessera.json is not read)" \
    "$(tcurl "$BASE/status" | jq -r .tls.client_certs.mode)" none
wait_until 5 grep -q '"GET /sub/file.txt HTTP/' "$T/stdout.log"
expect_match "requests are logged on stdout" "$(cat "$T/stdout.log")" '"GET /sub/file\.txt HTTP/[0-9.]+" 200 5 '
stop_server
expect "server exits 0" "$?" 0
check_server_log

OUT=$(oneshot "$TS_BIN" --serve "$T/mysite" --config conf/tessera.json)
expect "--serve with --config is refused (exit 2)" "$?" 2
expect_match "...saying so" "$OUT" "--serve DIR replaces --config and --root"
OUT=$(oneshot "$TS_BIN" --serve "$T/mysite" --root "$T/mysite")
expect "--serve with --root is refused (exit 2)" "$?" 2
OUT=$(oneshot "$TS_BIN" --serve "$T/nowhere" --check-config)
expect "--serve of a directory that does not exist: exit 2" "$?" 2
expect_match "...naming it" "$OUT" "root: $T/nowhere"

# where there is no certs/ (a fresh clone before make certs, or another directory)
cd "$T/elsewhere" || exit 1
OUT=$(oneshot "$TS_BIN" --serve "$T/mysite" --check-config)
expect "--serve without certs/server.crt: exit 2" "$?" 2
expect_match "...naming the file" "$OUT" "tls\.certificate: certs/server\.crt: No such file"
expect_match "...and the command that makes it" "$OUT" "\`make certs\` makes the development certificate"
OUT=$(oneshot "$TS_BIN" --serve "$T/mysite" --cert "$CERTS/server.crt" --key "$CERTS/server.key" --check-config)
expect "--serve with --cert and --key works from anywhere" "$?" 0
expect_match "...and --check-config says it checked the built-in defaults" "$OUT" \
    "^tessera: the built-in defaults are valid \(--serve reads no configuration file\)"
# without conf/tessera.json and without --config: the built-in defaults, said so
OUT=$(oneshot "$TS_BIN" --root "$T/mysite" --cert "$CERTS/server.crt" --key "$CERTS/server.key" --check-config)
expect "--check-config where there is no conf/tessera.json passes (the defaults)" "$?" 0
expect_match "...saying that no file was read and where it was looked for" "$OUT" \
    "^tessera: the built-in defaults are valid \(no configuration file: no --config, and no conf/tessera\.json in $T/elsewhere\)$"
OUT=$(oneshot "$TS_BIN" --check-config)
expect "the defaults refused there (no www/, no certs/): exit 2" "$?" 2
expect_match "...saying that no configuration file was read" "$OUT" \
    "no configuration file was read: no --config, and no conf/tessera\.json in $T/elsewhere; the built-in defaults apply"

# make serve: builds, makes the certificates, then the same command (make -n runs nothing)
OUT=$(make -n -C "$TS_TOP" --no-print-directory serve DIR="$T/mysite" PORT=9443 2>&1)
expect_match "make serve DIR=... PORT=... runs tessera --serve" "$OUT" "tessera --serve '$T/mysite' --listen 127\.0\.0\.1:9443$"
expect_match "...after making the certificates" "$OUT" "make-certs\.sh certs"
OUT=$(make -n -C "$TS_TOP" --no-print-directory serve 2>&1)
expect_match "make serve without DIR says what it needs" "$OUT" "make serve needs DIR="

# make run: conf/tessera.json, on this machine only (a development server), PORT= honoured as
# make serve does; then README's first step, curl https://localhost:PORT/, gets the home page
expect "conf/tessera.json listens on loopback only" \
    "$(jq '[.listen] | flatten | map(if type == "object" then .address else . end) |
        all(test("^(127\\.|\\[::1\\]:)"))' "$TS_TOP/conf/tessera.json")" true
OUT=$(make -n -C "$TS_TOP" --no-print-directory run 2>&1)
expect_match "make run runs tessera with conf/tessera.json" "$OUT" "/tessera --config conf/tessera\.json$"
PORT=$(pick_port) || exit 1
cmd=$(make -n -C "$TS_TOP" --no-print-directory run PORT="$PORT" 2>&1 | grep -E '/tessera --config ' | tail -1)
expect_match "make run PORT=... listens on 127.0.0.1:PORT" "$cmd" "/tessera --config conf/tessera\.json --listen 127\.0\.0\.1:$PORT$"
cd "$top" || exit 1
if [[ $cmd == *" --listen 127.0.0.1:$PORT" ]]; then # never the fixed port 8443 of a shared machine
    read -ra args <<<"${cmd#*/tessera }"
    if spawn_server "$TS_BIN" "${args[@]}"; then
        expect "...only there" "$(ss -Htln "sport = :$PORT" | awk '{print $4}' | sort | tr '\n' ' ')" "127.0.0.1:$PORT "
        expect_match "...and README's curl gets the home page" \
            "$(curl -sS --max-time $((20 * MULT)) --cacert certs/ca.crt "https://localhost:$PORT/")" "<title>"
        stop_server
        expect "...and it exits 0" "$?" 0
    else
        not_ok "make run's command starts in a checkout"
    fi
fi
check_server_log

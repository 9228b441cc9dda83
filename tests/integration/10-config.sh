#!/usr/bin/env bash
# Configuration: every bad key or file stops the server with exit 2 and a message naming it;
# flags override the file; --check-config, --help and --version.
. "$(dirname "$0")/lib.sh"
make_site
PORT=$(pick_port)

# run_config JSON: runs --check-config on it, sets RC and OUT
run_config() {
    printf '%s\n' "$1" >"$T/bad.json"
    OUT=$(oneshot "$TS_BIN" --config "$T/bad.json" --check-config)
    RC=$?
}
base_tls="\"certificate\": \"$CERTS/server.crt\", \"key\": \"$CERTS/server.key\""
good="{\"listen\": \"127.0.0.1:$PORT\", \"root\": \"$T/www\", \"tls\": {$base_tls}}"

run_config "$good"
expect "a valid configuration passes --check-config" "$RC" 0
expect_match "--check-config says it is valid" "$OUT" "valid"

# bad_config DESCRIPTION JSON EXPECTED-KEY-IN-MESSAGE
bad_config() {
    run_config "$2"
    if [ "$RC" = 2 ] && printf '%s' "$OUT" | grep -qF -- "$3"; then ok "$1 -> exit 2 naming $3"; else
        not_ok "$1 (exit $RC, message: $OUT)"
    fi
}
bad_config "unknown top-level key" "{\"listen\": \"127.0.0.1:$PORT\", \"colour\": 1, \"tls\": {$base_tls}}" "colour: unknown key"
bad_config "unknown nested key" "{\"root\": \"$T/www\", \"tls\": {$base_tls, \"session_cache\": {\"sise\": 5}}}" "tls.session_cache.sise: unknown key"
bad_config "wrong type (string for integer)" "{\"workers\": \"two\", \"root\": \"$T/www\", \"tls\": {$base_tls}}" "workers: must be an integer"
bad_config "out of range integer" "{\"workers\": 100000, \"root\": \"$T/www\", \"tls\": {$base_tls}}" "workers: must be an integer from 0 to 256"
bad_config "wrong type (number for bool)" "{\"root\": \"$T/www\", \"tls\": {$base_tls, \"session_tickets\": 1}}" "tls.session_tickets: must be true or false"
bad_config "unsupported protocol" "{\"root\": \"$T/www\", \"tls\": {$base_tls, \"protocols\": [\"TLSv1.1\"]}}" "tls.protocols: unsupported protocol \"TLSv1.1\""
bad_config "missing certificate file" "{\"root\": \"$T/www\", \"tls\": {\"certificate\": \"$T/nope.crt\", \"key\": \"$CERTS/server.key\"}}" "tls.certificate: $T/nope.crt"
printf 'not a key\n' >"$T/garbage.key"
bad_config "unreadable private key" "{\"root\": \"$T/www\", \"tls\": {\"certificate\": \"$CERTS/server.crt\", \"key\": \"$T/garbage.key\"}}" "tls.key: $T/garbage.key: cannot load private key"
bad_config "key that does not match the certificate" "{\"root\": \"$T/www\", \"tls\": {\"certificate\": \"$CERTS/server.crt\", \"key\": \"$CERTS/client.key\"}}" "tls.key: $CERTS/client.key: cannot load private key: error:05800074:x509 certificate routines::key values mismatch"
bad_config "missing root" "{\"root\": \"$T/nowhere\", \"tls\": {$base_tls}}" "root: $T/nowhere"
bad_config "root is a file" "{\"root\": \"$T/www/index.html\", \"tls\": {$base_tls}}" "root: $T/www/index.html: not a directory"
bad_config "bad listen address" "{\"listen\": \"localhost\", \"root\": \"$T/www\", \"tls\": {$base_tls}}" "listen:"
bad_config "bad listen port" "{\"listen\": \"127.0.0.1:99999\", \"root\": \"$T/www\", \"tls\": {$base_tls}}" "listen: bad port"
bad_config "invalid JSON" "{\"root\": \"$T/www\", " "invalid JSON near line"
bad_config "duplicate key" "{\"root\": \"$T/www\", \"root\": \"$T/www\", \"tls\": {$base_tls}}" "root: duplicate key"
bad_config "bad log level" "{\"root\": \"$T/www\", \"tls\": {$base_tls}, \"log\": {\"level\": \"loud\"}}" "log.level: must be one of"
bad_config "timeout out of range" "{\"root\": \"$T/www\", \"tls\": {$base_tls}, \"timeouts\": {\"shutdown_s\": -1}}" "timeouts.shutdown_s: must be an integer"
bad_config "file_cache.content_max_file_bytes out of range" "{\"root\": \"$T/www\", \"tls\": {$base_tls}, \"file_cache\": {\"content_max_file_bytes\": 100000000}}" "file_cache.content_max_file_bytes: must be an integer from 0 to 67108864"
bad_config "file_cache.content_bytes negative" "{\"root\": \"$T/www\", \"tls\": {$base_tls}, \"file_cache\": {\"content_bytes\": -1}}" "file_cache.content_bytes: must be an integer"
# what start-up would fail on is found by --check-config too (only binding is left out)
bad_config "access log in a missing directory" "{\"root\": \"$T/www\", \"tls\": {$base_tls}, \"log\": {\"access\": \"$T/nodir/access.log\"}}" "log.access: $T/nodir/access.log: cannot be created: $T/nodir: No such file"
bad_config "error log in a missing directory" "{\"root\": \"$T/www\", \"tls\": {$base_tls}, \"log\": {\"error\": \"$T/nodir/error.log\"}}" "log.error: $T/nodir/error.log: cannot be created: $T/nodir: No such file"
bad_config "error log under a file" "{\"root\": \"$T/www\", \"tls\": {$base_tls}, \"log\": {\"error\": \"$T/www/index.html/e.log\"}}" "log.error: $T/www/index.html/e.log:"
bad_config "access log is a directory" "{\"root\": \"$T/www\", \"tls\": {$base_tls}, \"log\": {\"access\": \"$T/www\"}}" "log.access: $T/www: is a directory"
expect "...and --check-config created no file" "$(ls "$T" | grep -c nodir)" 0
run_config "{\"listen\": \"127.0.0.1:$PORT\", \"root\": \"$T/www\", \"tls\": {$base_tls}, \"log\": {\"access\": \"$T/new-access.log\", \"error\": \"$T/new-error.log\"}}"
expect "logs to be created in an existing directory pass" "$RC" 0
expect "...without being created by the check" "$(ls "$T"/new-*.log 2>/dev/null | wc -l)" 0
expect "a log in a missing directory stops the start-up too (exit 2)" "$(printf '{"root": "%s", "tls": {%s}, "log": {"access": "%s"}}\n' "$T/www" "$base_tls" "$T/nodir/a.log" >"$T/bad.json"; oneshot "$TS_BIN" --config "$T/bad.json" >/dev/null; echo $?)" 2
(cd "$T" && bad_config "log.error \"off\" is refused, not a file name" "{\"root\": \"$T/www\", \"tls\": {$base_tls}, \"log\": {\"error\": \"off\"}}" 'log.error: "off" is not accepted')
(cd "$T" && oneshot "$TS_BIN" --config "$T/bad.json" >/dev/null)
expect "...by start-up too (exit 2)" "$?" 2
expect "...and no file named off was created" "$(ls "$T/off" "$TS_TOP/off" 2>/dev/null | wc -l)" 0
run_config "{\"listen\": \"127.0.0.1:$PORT\", \"root\": \"$T/www\", \"tls\": {$base_tls}, \"log\": {\"access\": \"off\"}}"
expect "log.access \"off\" is accepted" "$RC" 0
bad_config "session cache size zero" "{\"root\": \"$T/www\", \"tls\": {$base_tls, \"session_cache\": {\"size\": 0}}}" "tls.session_cache.size"

# A location path given twice: the handler applied the first rule and dropped the other, here the
# one requiring a client certificate. Refused by --check-config and by start-up, in one line
# naming both entries (the check that would have caught it), per site.
auth_tls="$base_tls, \"client_auth\": \"optional\", \"client_ca\": \"$CERTS/ca.crt\""
private_cc='{"path": "/private/", "cache_control": "private"}'
private_cert='{"path": "/private/", "require_client_cert": true}'
run_config "{\"listen\": \"127.0.0.1:$PORT\", \"root\": \"$T/www\", \"tls\": {$auth_tls}, \"locations\": [$private_cert]}"
expect "one location requiring a client certificate passes (what follows is valid but for the repetition)" "$RC" 0
dup_loc="{\"listen\": \"127.0.0.1:$PORT\", \"root\": \"$T/www\", \"tls\": {$auth_tls}, \"locations\": [$private_cc, $private_cert]}"
bad_config "a location path given twice" "$dup_loc" 'locations[1].path: "/private/" duplicates locations[0].path'
expect "...in one line" "$(printf '%s\n' "$OUT" | wc -l)" 1
OUT=$(printf '%s\n' "$dup_loc" >"$T/bad.json"; oneshot "$TS_BIN" --config "$T/bad.json")
expect "...start-up refuses it too (exit 2)" "$?" 2
expect_match "...naming it" "$OUT" 'locations\[1\]\.path: "/private/" duplicates locations\[0\]\.path'
bad_config "a location path with and without its slash" "{\"root\": \"$T/www\", \"tls\": {$base_tls}, \"locations\": [{\"path\": \"/a/\"}, {\"path\": \"/a\", \"autoindex\": true}]}" 'locations[1].path: "/a" duplicates locations[0].path "/a/"'
run_config "{\"listen\": \"127.0.0.1:$PORT\", \"root\": \"$T/www\", \"tls\": {$base_tls}, \"locations\": [{\"path\": \"/a/\"}, {\"path\": \"/a/b/\"}, {\"path\": \"/ab\"}]}"
expect "nested and sibling location paths pass" "$RC" 0
site="{\"server_names\": [\"localhost\"], \"root\": \"$T/www\", \"certificates\": [{$base_tls}]"
bad_config "a location path given twice in a site" "{\"root\": \"$T/www\", \"tls\": {$base_tls}, \"sites\": [$site, \"client_auth\": \"optional\", \"client_ca\": \"$CERTS/ca.crt\", \"locations\": [$private_cc, $private_cert]}]}" 'sites[0] (localhost).locations[1].path: "/private/" duplicates locations[0].path'
# A location path not in normal form: matched against the decoded, normalized request path, it
# never matched what it names, and its require_client_cert protected nothing. Refused by
# --check-config and by start-up, in one line naming the key and the form to write.
enc_loc="{\"listen\": \"127.0.0.1:$PORT\", \"root\": \"$T/www\", \"tls\": {$auth_tls}, \"locations\": [{\"path\": \"/%70rivate/\", \"require_client_cert\": true}]}"
bad_config "a location path with a percent-encoded letter" "$enc_loc" 'locations[0].path: "/%70rivate/" is not in normal form: write "/private/"'
expect "...in one line" "$(printf '%s\n' "$OUT" | wc -l)" 1
OUT=$(printf '%s\n' "$enc_loc" >"$T/bad.json"; oneshot "$TS_BIN" --config "$T/bad.json")
expect "...start-up refuses it too (exit 2)" "$?" 2
expect_match "...naming it" "$OUT" 'locations\[0\]\.path: "/%70rivate/" is not in normal form: write "/private/"'
bad_config "a location path with an empty segment" "{\"root\": \"$T/www\", \"tls\": {$base_tls}, \"locations\": [{\"path\": \"/a//b/\"}]}" 'locations[0].path: "/a//b/" is not in normal form: write "/a/b/"'
bad_config "a location path with dot segments, in a site" "{\"root\": \"$T/www\", \"tls\": {$base_tls}, \"sites\": [$site, \"locations\": [{\"path\": \"/x/\"}, {\"path\": \"/./a/../b/\"}]}]}" 'sites[0] (localhost).locations[1].path: "/./a/../b/" is not in normal form: write "/b/"'
bad_config "a location path with an encoded slash" "{\"root\": \"$T/www\", \"tls\": {$base_tls}, \"locations\": [{\"path\": \"/a%2Fb/\"}]}" 'locations[0].path: "/a%2Fb/" can never match'
run_config "{\"listen\": \"127.0.0.1:$PORT\", \"root\": \"$T/www\", \"tls\": {$base_tls}, \"locations\": [{\"path\": \"/\"}, {\"path\": \"/a b/\"}, {\"path\": \"/caf\\u00e9\"}, {\"path\": \"/..a/\"}, {\"path\": \"/q?x\"}]}"
expect "location paths a request path can resolve to pass" "$RC" 0
# error_pages given a status twice: cJSON keeps both members; refused like any repeated key
dup_pages="{\"listen\": \"127.0.0.1:$PORT\", \"root\": \"$T/www\", \"tls\": {$base_tls}, \"error_pages\": {\"404\": \"/hello.txt\", \"404\": \"/index.html\"}}"
bad_config "an error_pages status given twice" "$dup_pages" "error_pages.404: duplicate key"
OUT=$(printf '%s\n' "$dup_pages" >"$T/bad.json"; oneshot "$TS_BIN" --config "$T/bad.json")
expect "...start-up refuses it too (exit 2)" "$?" 2
expect_match "...naming it" "$OUT" 'error_pages\.404: duplicate key'
bad_config "an error_pages status given twice in a site" "{\"root\": \"$T/www\", \"tls\": {$base_tls}, \"sites\": [$site, \"error_pages\": {\"500\": \"/hello.txt\", \"500\": \"/index.html\"}}]}" "sites[0] (localhost).error_pages.500: duplicate key"

OUT=$(oneshot "$TS_BIN" --config "$T/missing.json")
RC=$?
expect "a missing --config file exits 2" "$RC" 2
expect_match "the message names the missing file" "$OUT" "$T/missing.json"

OUT=$(oneshot "$TS_BIN" --config "$T/bad.json" --workers x)
expect "--workers x exits 2" "$?" 2
OUT=$(oneshot "$TS_BIN" --bogus)
expect "an unknown flag exits 2" "$?" 2
expect_match "an unknown flag prints usage" "$OUT" "usage: tessera"
OUT=$(oneshot "$TS_BIN" --help | tr '\n' ' ')
expect_match "--help lists every flag" "$OUT" "--config.*--listen.*--root.*--workers.*--cert.*--key.*--check-config.*--upgrade.*--help.*--version"
OUT=$(oneshot "$TS_BIN" --version)
expect_match "--version prints name, version and OpenSSL" "$OUT" "^tessera [0-9]+\.[0-9]+\.[0-9]+ \(OpenSSL 3"

# flags override the file: the file points at a missing root and a wrong port
printf '%s\n' "{\"listen\": \"127.0.0.1:1\", \"root\": \"$T/nowhere\", \"tls\": {\"certificate\": \"$T/x.crt\", \"key\": \"$T/x.key\"}}" >"$T/override.json"
OUT=$(oneshot "$TS_BIN" --config "$T/override.json" --root "$T/www" --cert "$CERTS/server.crt" --key "$CERTS/server.key" --listen "127.0.0.1:$PORT" --workers 1 --check-config)
expect "--root, --cert, --key, --listen override the file" "$?" 0

# the real thing with overrides: the server serves from the overriding root on the overriding port
mkdir -p "$T/other"
printf 'other root\n' >"$T/other/index.html"
start_server --root "$T/other" --workers 1 || exit 1
expect "--root override is served" "$(tcurl "$BASE/")" "other root"
stop_server
expect "server exits 0 on SIGTERM" "$?" 0
check_server_log

# --config from a pipe (process substitution, a piped /dev/stdin): the file is read once, so
# start-up does not find it empty the second time ("invalid JSON near line 1"); a reload, which
# cannot read a pipe again, fails saying so and the server goes on
printf '%s\n' "$good" >"$T/good.json"
OUT=$(oneshot "$TS_BIN" --config <(cat "$T/good.json") --check-config)
expect "--check-config --config <(...) passes" "$?" 0
OUT=$(cat "$T/good.json" | oneshot "$TS_BIN" --config /dev/stdin --check-config)
expect "--check-config --config /dev/stdin from a pipe passes" "$?" 0
OUT=$(printf '{"root": \n' | oneshot "$TS_BIN" --config /dev/stdin --check-config)
expect "invalid JSON from a pipe: exit 2" "$?" 2
expect_match "...naming the line where it is" "$OUT" "/dev/stdin: invalid JSON near line 2"
PORT=$(pick_port)
write_config
ALLOWED_ERRORS='reload failed: /dev/fd/[0-9]+: a pipe, read once at start' \
    spawn_server "$TS_BIN" --config <(cat "$T/tessera.json") || exit 1
expect "a server started with --config <(...) serves" "$(tcurl "$BASE/hello.txt")" hello
kill -HUP "$SERVER_PID"
check "...SIGHUP: the reload fails, saying the pipe cannot be read again" wait_until 10 grep -qE \
    'reload failed: /dev/fd/[0-9]+: a pipe, read once at start: a reload cannot read it again \(restart tessera to change its configuration, or give --config a regular file\); still serving generation 1' "$T/error.log"
expect "...counted in /status, the reason in last_error" \
    "$(tcurl "$BASE/status" | jq -r '[.reload.failed, .reload.generation, (.reload.last_error | test("a pipe, read once"))] | @tsv')" \
    "$(printf '1\t1\ttrue')"
expect "...and it serves on" "$(tcurl "$BASE/hello.txt")" hello
stop_server
expect "...and exits 0" "$?" 0
check_server_log

# the configurations shipped in conf/ are valid (paths are relative to the top directory)
for f in "$TS_TOP"/conf/tessera.json "$TS_TOP"/conf/examples/*.json; do
    OUT=$(cd "$TS_TOP" && oneshot "$TS_BIN" --config "$f" --check-config)
    rc=$?
    case $f in
    */production.json) # names files of a real host: everything but those must be right
        expect_match "shipped ${f#$TS_TOP/} only lacks the host's files" "$OUT" "root: /srv/www: No such file" ;;
    */fleet-instance.json) # the fleet's shared key file is the host's
        expect_match "shipped ${f#$TS_TOP/} only lacks the host's key file" "$OUT" "tls.ticket_key_file: /etc/tessera/ticket.key" ;;
    *) expect "shipped ${f#$TS_TOP/} is valid" "$rc" 0 ;;
    esac
done

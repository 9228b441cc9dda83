#!/usr/bin/env bash
# Logs: access log to stdout, to a file, or off; combined and JSON formats; the error log to a
# file with levels.
. "$(dirname "$0")/lib.sh"
make_site

ACCESS_LOG=- start_server || exit 1
tcurl -A 'ua/1' -o /dev/null "$BASE/hello.txt"
stop_server
expect_match "access log to stdout" "$(cat "$T/stdout.log")" '"GET /hello.txt HTTP/1.1" 200 6 "-" "ua/1"$'

ACCESS_LOG=off start_server || exit 1
tcurl -o /dev/null "$BASE/hello.txt"
stop_server
expect "access log off writes nothing" "$(wc -c <"$T/stdout.log")" 0

# a configuration with file logs, JSON format and debug level
cat >"$T/json.json" <<JSON
{ "listen": "127.0.0.1:$(pick_port)", "root": "$T/www", "workers": 1,
  "tls": { "certificate": "$CERTS/server.crt", "key": "$CERTS/server.key" },
  "log": { "access": "$T/json.log", "format": "json", "error": "$T/err.log", "level": "debug" } }
JSON
PORT=$(sed -n 's/.*"127.0.0.1:\([0-9]*\)".*/\1/p' "$T/json.json")
spawn_server "$TS_BIN" --config "$T/json.json" || exit 1
watch_log "$T/err.log"
tcurl -A 'say "hi"' -e 'https://r.example/' -o /dev/null "$BASE/hello.txt?a=b"
tcurl -o /dev/null "$BASE/missing"
for i in 1 2 3 4 5; do tcurl -o /dev/null "$BASE/hello.txt?d=$i"; done
stop_server
expect "server with file logs exits 0" "$?" 0
# microseconds measured, not milliseconds times 1000: five durations all multiples of 1000
# would be a one-in-10^15 chance
D=$(grep -o '"target":"/hello.txt?d=.*"duration_us":[0-9]*' "$T/json.log" | sed 's/.*://')
expect "five durations logged" "$(printf '%s\n' "$D" | grep -c .)" 5
expect_match "duration_us is measured in microseconds ($(echo $D))" "$(printf '%s\n' "$D" | awk '$1 % 1000 != 0 {n++} END {print n + 0}')" '^[1-5]$'
L=$(grep 'hello.txt' "$T/json.log")
expect_match "JSON access log line" "$L" '^\{"time":"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z","remote":"127\.0\.0\.1","user":"-","method":"GET","target":"/hello\.txt\?a=b","protocol":"HTTP/1\.1","status":200,"bytes":6,"referer":"https://r\.example/","user_agent":"say \\"hi\\"","duration_us":[0-9]+\}$'
expect_match "JSON access log records a 404" "$(cat "$T/json.log")" '"target":"/missing".*"status":404'
expect_match "error log goes to the configured file" "$(cat "$T/err.log")" '\[info\] tessera .* listening on'
expect_match "debug level logs handshakes" "$(cat "$T/err.log")" '\[debug\] 127\.0\.0\.1: worker 0: TLSv1\.3 handshake \(full\)'
expect "nothing on stderr when the error log is a file" "$(wc -c <"$T/error.log")" 0

# a log file that cannot be opened is a configuration error naming the key
sed 's|"access": "[^"]*"|"access": "/nonexistent/dir/a.log"|' "$T/json.json" >"$T/bad.json"
OUT=$(oneshot "$TS_BIN" --config "$T/bad.json")
expect "an unwritable access log exits 2" "$?" 2
expect_match "...naming log.access" "$OUT" "log.access: /nonexistent/dir/a.log"
check_server_log

# a full disk: the lost access log is reported in the error log (once a minute), serving goes on
ACCESS_LOG=/dev/full ALLOWED_ERRORS="access log: write failed" start_server || exit 1
expect "with the access log on a full disk requests are still served" "$(tcurl "$BASE/hello.txt")" hello
for _ in $(seq 1 $((30 * MULT))); do grep -q 'access log: write failed' "$T/error.log" && break; sleep 0.1; done
expect_match "...and the failure is reported with its cause" "$(cat "$T/error.log")" '\[error\] access log: write failed \(No space left on device\); [0-9]+ bytes of access log lost so far'
tcurl -o /dev/null "$BASE/hello.txt"
stop_server
expect "...only once a minute" "$(grep -c 'access log: write failed' "$T/error.log")" 1
check_server_log

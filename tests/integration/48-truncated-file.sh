#!/usr/bin/env bash
# A file cut short in place while it is being served (a site updated by rewriting files instead
# of renaming new ones into place): the promised Content-Length cannot be kept. The connection
# ends without close_notify, so the client sees a truncated response as an error and not as a
# clean end; /status counts an error close; the access log records the bytes actually sent and
# marks the response as truncated.
. "$(dirname "$0")/lib.sh"
make_site
mkdir -p "$T/www/f"
SLOW="timeout $((60 * MULT)) python3 $TS_TOP/tests/tools/slowread.py --cafile $CERTS/ca.crt --rcvbuf 8192"
stat_of() { tcurl "$BASE/status" | python3 -c "import json,sys; d=json.load(sys.stdin); print(d$1)"; }
at_least() { [ "$(stat_of "$2")" -ge "$1" ] 2>/dev/null; } # N EXPR: for wait_until

SIZE=30000000
# the cache keeps the emptied file's old length (part 2) however slowly the test runs; files of
# up to 4096 bytes keep their bytes in it (part 3), larger ones are read from the file
TOP_EXTRA='"file_cache": { "valid_ms": 3600000, "content_max_file_bytes": 4096 },' \
ALLOWED_ERRORS='file truncated' WORKERS=1 LOG_EXTRA=', "format": "json"' \
    TIMEOUTS='"shutdown_s": 1, "send_s": 30' start_server || exit 1

# 1. Truncated while a slow client is paused before reading: the server stops at the edge.
truncate -s $SIZE "$T/www/f/big"
e0=$(stat_of "['connections']['closed_error']")
$SLOW --port "$PORT" --path /f/big --sizes $SIZE --pause $((2 * MULT)) --signal-file "$T/sent" >"$T/slow.out" &
S=$!
wait_until 10 test -e "$T/sent.$SIZE"
# cut once the server answers it (with its one worker, a /status answered after it sees it in
# flight), however long the request took to arrive
check "the request is being answered before the file is cut" wait_until 10 at_least 2 "['requests']['in_flight']"
truncate -s 1000000 "$T/www/f/big"
wait $S
cat "$T/slow.out" | sed 's/^/# /'
got=$(sed -n 's/.*got=\([0-9]*\).*/\1/p' "$T/slow.out")
end=$(sed -n 's/.* end=\([^ ]*\).*/\1/p' "$T/slow.out")
if [ -n "$got" ] && [ "$got" -lt $SIZE ]; then ok "the client gets a short body ($got bytes)"; else
    not_ok "the client gets a short body (got '$got')"; fi
expect_no_match "...and no close_notify after it" "$end" '^close_notify$'
wait_until 5 sh -c "[ \$(curl -sS --max-time 10 --cacert $CERTS/ca.crt --resolve localhost:$PORT:127.0.0.1 $BASE/status |
    python3 -c 'import json,sys; print(json.load(sys.stdin)[\"connections\"][\"closed_error\"])') -gt $e0 ]"
e1=$(stat_of "['connections']['closed_error']")
if [ "$e1" -gt "$e0" ]; then ok "/status counts an error close ($e0 -> $e1)"; else
    not_ok "/status counts an error close (closed_error stayed $e0)"; fi
wait_until 5 grep -q '"/f/big"' "$T/access.log"
line=$(grep '"/f/big"' "$T/access.log" | tail -1)
echo "# $line"
expect_match "the access log marks it truncated" "$line" '"truncated":true'
logged=$(printf '%s' "$line" | python3 -c 'import json,sys; print(json.load(sys.stdin)["bytes"])')
if [ "$logged" -lt $SIZE ]; then ok "...with the bytes actually sent ($logged)"; else
    not_ok "...with the bytes actually sent (logged $logged)"; fi

# 2. Emptied before the first read: no body at all, headers never sent; still an error close.
printf 'x%.0s' $(seq 1 5000) >"$T/www/f/small"
tcurl -o /dev/null "$BASE/f/small" # now in the open-file cache with its length
: >"$T/www/f/small"
e0=$(stat_of "['connections']['closed_error']")
tcurl -o "$T/small.out" "$BASE/f/small" 2>"$T/small.err"
rc=$?
sed 's/^/# /' "$T/small.err"
if [ $rc -ne 0 ]; then ok "curl reports an error for the emptied cached file (status $rc)"; else
    not_ok "curl reports an error for the emptied cached file (it saw a clean end)"; fi
wait_until 5 sh -c "grep '\"/f/small\"' $T/access.log | tail -1 | grep -q truncated"
line=$(grep '"/f/small"' "$T/access.log" | tail -1)
echo "# $line"
expect_match "...and the access log marks it truncated, 0 bytes" "$line" '"bytes":0,.*"truncated":true'
e1=$(stat_of "['connections']['closed_error']")
if [ "$e1" -gt "$e0" ]; then ok "...an error close ($e0 -> $e1)"; else
    not_ok "...an error close (closed_error stayed $e0)"; fi

# 3. A small file the cache holds the bytes of: emptied in place, it is still served whole, as
# it was read (until revalidation), and no error is counted.
head -c 3000 /dev/urandom >"$T/www/f/tiny"
cp "$T/www/f/tiny" "$T/tiny.orig"
sleep 1.2 # a file changed less than a second ago keeps no bytes in the cache (it may be mid-write)
tcurl -o /dev/null "$BASE/f/tiny"
: >"$T/www/f/tiny"
e0=$(stat_of "['connections']['closed_error']")
expect "an emptied small file in the cache: 200 with its 3000 bytes" \
    "$(tcurl -o "$T/tiny.out" -w '%{http_code} %{size_download}' "$BASE/f/tiny")" "200 3000"
check "...the bytes it had when read" cmp -s "$T/tiny.out" "$T/tiny.orig"
expect "...no error close" "$(stat_of "['connections']['closed_error']")" "$e0"

stop_server
expect "server exits 0" "$?" 0
check_server_log

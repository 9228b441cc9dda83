#!/usr/bin/env bash
# multipart/byteranges boundaries are random: they differ between requests and between starts
# of the server (an unseeded generator would repeat the same sequence after every start).
. "$(dirname "$0")/lib.sh"
make_site
printf '0123456789abcdefghij' >"$T/www/digits.txt"
WORKERS=1

boundaries() {
    local i
    for i in 1 2; do
        tcurl -D - -o /dev/null -H 'Range: bytes=0-1,10-11' "$BASE/digits.txt" |
            tr -d '\r' | sed -n 's/^content-type: multipart\/byteranges; boundary=//Ip'
    done
}

start_server || exit 1
FIRST=$(boundaries)
stop_server
expect "server exits 0" "$?" 0
start_server || exit 1
SECOND=$(boundaries)
stop_server
expect "server exits 0 again" "$?" 0

expect "four boundaries, each tessera- and 16 hex digits" \
    "$(printf '%s\n%s\n' "$FIRST" "$SECOND" | grep -cE '^tessera-[0-9a-f]{16}$')" 4
expect "...all different (two requests on each of two starts)" \
    "$(printf '%s\n%s\n' "$FIRST" "$SECOND" | sort -u | wc -l)" 4
check_server_log

#!/usr/bin/env bash
# Files that are not regular files: a FIFO, a socket, links to them inside and outside the
# root. They answer 404 at once, and the worker (only one here) goes on serving: opening a FIFO
# for reading would otherwise wait for a writer, and every connection of that worker with it.
. "$(dirname "$0")/lib.sh"
make_site
W=$T/www
mkdir -p "$T/outside"
mkfifo "$W/fifo" "$T/outside/fifo"
ln -s fifo "$W/fifo-in"
ln -s "$T/outside/fifo" "$W/fifo-out"
ln -s ../outside/fifo "$W/fifo-out-rel"
ln -s /dev/zero "$W/zero"
python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$W/sock"
check "the socket file exists" test -S "$W/sock"
WORKERS=1 start_server || exit 1

quick() { tcurl --max-time $((5 * MULT)) -o /dev/null -w '%{http_code}' "$@"; }
expect "GET /fifo -> 404" "$(quick "$BASE/fifo")" 404
expect "...and the only worker answers the next request" "$(tcurl --max-time $((5 * MULT)) "$BASE/hello.txt")" hello
expect "GET /fifo again (a cached answer) -> 404" "$(quick "$BASE/fifo")" 404
expect "HEAD /fifo -> 404" "$(quick -I "$BASE/fifo")" 404
expect "/fifo/ -> 404" "$(quick "$BASE/fifo/")" 404
expect "a symlink to the FIFO inside -> 404" "$(quick "$BASE/fifo-in")" 404
expect "an absolute symlink to a FIFO outside -> 404" "$(quick "$BASE/fifo-out")" 404
expect "a relative symlink to a FIFO outside -> 404" "$(quick "$BASE/fifo-out-rel")" 404
expect "a socket file -> 404" "$(quick "$BASE/sock")" 404
expect "a symlink to /dev/zero -> 404" "$(quick "$BASE/zero")" 404
expect "a FIFO then a file on one connection: 404 200" \
    "$(tcurl --max-time $((5 * MULT)) -o /dev/null -o /dev/null -w '%{http_code} ' "$BASE/fifo" "$BASE/hello.txt")" "404 200 "
check "the server keeps no descriptor of the FIFO" bash -c "! ls -l /proc/$SERVER_PID/fd | grep -q '/fifo\$'"
expect "the server still answers" "$(tcurl --max-time $((5 * MULT)) "$BASE/hello.txt")" hello

# Out of descriptors: the server's limit is lowered so that the connection is accepted but the
# file cannot be opened. That answers 503 and is not cached: with the limit back, the file is
# served at once (well within file_cache.valid_ms).
fds=$(ls "/proc/$SERVER_PID/fd")
k=0
while printf '%s\n' "$fds" | grep -qx "$k" && [ "$k" -lt 100000 ]; do k=$((k + 1)); done
hard=$(prlimit --pid "$SERVER_PID" --nofile --noheadings --output HARD --raw)
soft=$(prlimit --pid "$SERVER_PID" --nofile --noheadings --output SOFT --raw)
check "lower the server's descriptor limit" prlimit --pid "$SERVER_PID" --nofile=$((k + 1)):"$hard"
code=$(tcurl --max-time $((5 * MULT)) -D "$T/h" -o /dev/null -w '%{http_code}' "$BASE/style.css")
check "restore the limit" prlimit --pid "$SERVER_PID" --nofile="$soft:$hard"
expect "no descriptor for the file -> 503" "$code" 503
expect "...with Retry-After" "$(tr -d '\r' <"$T/h" | sed -n 's/^Retry-After: //p')" 1
expect "...not cached: served once descriptors are back" "$(tcurl --max-time $((5 * MULT)) -o /dev/null -w '%{http_code}' "$BASE/style.css")" 200
stop_server
expect "server exits 0" "$?" 0
check_server_log

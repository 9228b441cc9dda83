#!/usr/bin/env bash
# The load clients the README and `make bench` use measure what they are said to: with
# --no-resume every connection of build/resume-load is a full handshake (the server's own
# counters agree), without it every connection after a client slot's first resumes. The
# "full handshake" benchmark row is that client with --no-resume.
. "$(dirname "$0")/lib.sh"
make_site
LOAD=$TS_BUILD/resume-load
hs() { tcurl -s "$BASE/status" | jq -r '"\(.tls.handshakes.full) \(.tls.handshakes.resumed)"'; }
run() { timeout $((60 * MULT)) "$LOAD" --port "$PORT" --path /index.html --concurrency 4 --max-conns 40 --duration $((30 * MULT)) "$@"; }

expect_match "bench/run.sh: the full-handshake row runs resume-load with --no-resume" \
    "$(grep -E '^ *full\) echo' "$TS_TOP/bench/run.sh")" '--no-resume'
start_server || exit 1
between() { # name value low high
    if [ "$2" -ge "$3" ] && [ "$2" -le "$4" ]; then ok "$1 ($2)"; else not_ok "$1 ($2 not in $3..$4)"; fi
}
# --max-conns stops the client after 40 cycles; up to 3 more, in flight then, may finish too,
# and a handshake the client abandons at the stop still counts on the server
for v in --tls13 --tls12; do
    read -r f0 r0 <<<"$(hs)"
    OUT=$(run "$v" --no-resume)
    read -r f1 r1 <<<"$(hs)"
    echo "# $v --no-resume: $OUT"
    n=$(kv "$OUT" conns)
    expect_match "$v --no-resume: no session resumed, no errors" "$OUT" ' resumed=0 .*errors=0 '
    between "...40 to 43 connections" "${n:-0}" 40 43
    # the /status read between is one full handshake of curl's own
    between "...the server counted a full handshake for each (and curl's one)" "$((f1 - f0))" "$((n + 1))" "$((n + 4))"
    expect "...and no resumed one" "$((r1 - r0))" 0
    read -r f0 r0 <<<"$(hs)"
    OUT=$(run "$v")
    read -r f1 r1 <<<"$(hs)"
    echo "# $v: $OUT"
    n=$(kv "$OUT" conns) res=$(kv "$OUT" resumed)
    expect_match "$v with resumption: no errors" "$OUT" ' errors=0 '
    expect "...every connection resumed but each of the 4 slots' first" "$((n - res))" 4
    expect "...the server counted 4 full handshakes (and curl's one)" "$((f1 - f0))" 5
    between "...and the client's resumptions" "$((r1 - r0))" "${res:-0}" "$((${res:-0} + 3))"
done
stop_server
expect "server exits 0" "$?" 0
check_server_log

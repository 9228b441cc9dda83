#!/usr/bin/env bash
# Reloads under load. Certificate renewal (release build only: the long part): h2load over
# HTTP/2 and HTTP/1.1 keep-alive, a loop of new TLS connections and slow downloads run through
# several reloads that each replace the certificate; no request fails, new connections get the
# new certificate, downloads begun before finish whole. A storm of SIGHUP (every build: ASan and
# TSan watch the swap of generations under load): 50 signals, some back to back; signals may
# coalesce, but every reload done is counted, none fails, no request fails, one more SIGHUP
# after the storm still reloads, memory (release) and descriptors come back, the log is clean.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-reload.sh"
make_site
mkdir -p "$T/www2"
printf 'www\n' >"$T/www/which.txt"
printf 'www2\n' >"$T/www2/which.txt"
cp "$T/www/hello.txt" "$T/www2/hello.txt"
head -c $((8 * 1024 * 1024)) /dev/urandom >"$T/www/big.bin"
BIG_SUM=$(sha256sum <"$T/www/big.bin" | cut -d' ' -f1)
# www2: the same files but which.txt, so that every request succeeds whichever root serves it
cp -r "$T/www/." "$T/www2/"
printf 'www2\n' >"$T/www2/which.txt"
mkcert gen1
install gen1

# h2load_check NAME FILE: h2load's summary says every request finished with a 2xx
h2load_check() {
    local line codes total ndone succ failed errored timeout c2xx
    line=$(grep '^requests:' "$2")
    codes=$(grep '^status codes:' "$2")
    read -r total ndone succ failed errored timeout < <(sed -E \
        's/^requests: ([0-9]+) total, [0-9]+ started, ([0-9]+) done, ([0-9]+) succeeded, ([0-9]+) failed, ([0-9]+) errored, ([0-9]+) timeout.*/\1 \2 \3 \4 \5 \6/' <<<"$line")
    c2xx=$(sed -E 's/^status codes: ([0-9]+) 2xx.*/\1/' <<<"$codes")
    echo "# $1: $line; $codes"
    if [ -n "$line" ] && [ "${total:-0}" -gt 0 ] && [ "$failed" = 0 ] && [ "$errored" = 0 ] &&
        [ "$timeout" = 0 ] && [ "$succ" = "$ndone" ] && [ "$c2xx" = "$succ" ]; then
        ok "$1: $succ requests, none failed, errored or timed out, all 2xx"
    else
        not_ok "$1: not every request succeeded"
        grep -iE 'error|fail|reset|refused' "$2" | head -5 | sed 's/^/#   /'
    fi
}
# conn_loop NAME MECH: new connections (tlsprobe resume, 10 per run, 5 runs a second at most)
# until $T/NAME.stop
conn_loop() {
    rm -f "$T/$1.stop"
    (
        for _ in $(seq 1 500); do
            [ -f "$T/$1.stop" ] && break
            probe resume --count 10 --mech "$2"
            sleep 0.2
        done >"$T/$1.out" 2>"$T/$1.err"
    ) &
    PIDS+=("$!")
    eval "LOOP_$1=\$!"
}
# conn_loop_check NAME: stops the loop; every connection it made was served
conn_loop_check() {
    local p runs served
    touch "$T/$1.stop"
    eval "p=\$LOOP_$1"
    wait "$p"
    runs=$(grep -c 'mode=resume' "$T/$1.out")
    served=$(awk '{for (i = 1; i <= NF; i++) if ($i ~ /^ok=/) s += substr($i, 4)} END {print s + 0}' "$T/$1.out")
    if [ "$runs" -gt 0 ] && [ "$served" = $((runs * 10)) ]; then ok "$1: all $served new connections served"
    else
        not_ok "$1: $served of $((runs * 10)) new connections served"
        sort "$T/$1.err" | uniq -c | sort -rn | head -5 | sed 's/^/#   /'
    fi
}

###################################################################### certificate renewal under load
if sanitized; then
    ok "# SKIP certificate renewal under load runs in the release build only"
else
    start_reload_server || exit 1
    RENEWALS=4 DUR=$((3 * 4 + 4))
    h2load -c 4 -m 4 --rps 100 -D $((DUR * MULT)) "https://127.0.0.1:$PORT/hello.txt" >"$T/h2load.h2" 2>&1 &
    H2=$!
    h2load --h1 -c 4 --rps 100 -D $((DUR * MULT)) "https://127.0.0.1:$PORT/hello.txt" >"$T/h2load.h1" 2>&1 &
    H1=$!
    PIDS+=("$H2" "$H1")
    conn_loop new13 tls13
    conn_loop new12 tls12-ticket
    # downloads begun before the first renewal, read at 1 MB/s: 8 s each
    tcurl --limit-rate 1M -o "$T/slow1.bin" "$BASE/big.bin" 2>"$T/slow1.err" &
    SLOW1=$!
    tcurl --http2 --limit-rate 1M -o "$T/slow2.bin" "$BASE/big.bin" 2>"$T/slow2.err" &
    SLOW2=$!
    PIDS+=("$SLOW1" "$SLOW2")
    hold h2 held2 localhost /hello.txt /big.bin
    hold h1 held1 localhost /hello.txt /big.bin
    held held2 1 >/dev/null
    held held1 1 >/dev/null
    sleep 1
    for i in $(seq 2 $((RENEWALS + 1))); do
        # odd renewals keep the key, even ones bring a new key
        if [ $((i % 2)) = 1 ]; then mkcert "gen$i" "" "$PKI/gen$((i - 1)).key"; else mkcert "gen$i"; fi
        install "gen$i"
        hup_ok "renewal $((i - 1)) under load"
        expect "...new connections get the new certificate's serial" "$(served_serial)" "$(cert_serial "$PKI/gen$i.crt")"
        sleep 2
    done
    step held2 2
    step held1 2
    expect "an HTTP/2 connection opened before the renewals downloads 8 MB on it" "$(held held2 2)" "2 200 8388608"
    expect "an HTTP/1.1 connection opened before too" "$(held held1 2)" "2 200 8388608"
    expect "...whole" "$(sha256sum <"$T/held2.body.2" | cut -d' ' -f1) $(sha256sum <"$T/held1.body.2" | cut -d' ' -f1)" "$BIG_SUM $BIG_SUM"
    wait "$SLOW1"
    expect "a slow HTTP/1.1 download begun before the renewals completes (curl status)" "$?" 0
    wait "$SLOW2"
    expect "a slow HTTP/2 download begun before the renewals completes (curl status)" "$?" 0
    expect "...both whole" "$(sha256sum <"$T/slow1.bin" | cut -d' ' -f1) $(sha256sum <"$T/slow2.bin" | cut -d' ' -f1)" "$BIG_SUM $BIG_SUM"
    wait "$H2" "$H1"
    h2load_check "h2load HTTP/2 through $RENEWALS renewals" "$T/h2load.h2"
    h2load_check "h2load HTTP/1.1 through $RENEWALS renewals" "$T/h2load.h1"
    conn_loop_check new13
    conn_loop_check new12
    expect "status: generation $G, failed 0" "$(rstat generation) $(rstat failed)" "$G 0"
    stop_server
    check_server_log
fi

###################################################################### a storm of SIGHUP under load
install gen1
start_reload_server || exit 1
PID=$SERVER_PID
# warm-up: a few reloads and connections, so that what stays allocated is there before we measure
for i in 1 2 3; do hup_ok "warm-up reload $i"; done >"$T/warmup.tap"
grep -q '^not ok' "$T/warmup.tap" && cat "$T/warmup.tap"
probe resume --count 50 --mech tls13 >/dev/null
tcurl -o /dev/null "$BASE/big.bin"
# descriptors other than the files the workers' open-file caches keep (the site's files)
# (the roots themselves, O_PATH descriptors held per generation, are counted)
fds() { find "/proc/$PID/fd" -mindepth 1 -printf '%l\n' 2>/dev/null | grep -vEc "^$T/www2?/"; }
FD0=$(fds)
R0=$(rss_kb "$PID")
DONE0=$(num "$(rstat "done")")
# the load's duration, not a timeout: the storm may outlast it (the connection loops go on)
DUR=$(if sanitized; then echo 25; else echo 10; fi)
h2load -c 2 -m 4 --rps 50 -D $DUR "https://127.0.0.1:$PORT/which.txt" >"$T/storm.h2" 2>&1 &
H2=$!
h2load --h1 -c 2 --rps 50 -D $DUR "https://127.0.0.1:$PORT/which.txt" >"$T/storm.h1" 2>&1 &
H1=$!
PIDS+=("$H2" "$H1")
conn_loop storm13 tls13
conn_loop storm12 tls12-id
tcurl --limit-rate 2M -o "$T/storm.bin" "$BASE/big.bin" 2>"$T/storm.err" &
SLOW=$!
PIDS+=("$SLOW")
sleep 0.5
# 30 signals each waited for, then 4 bursts of 5 back to back
# the waited-for ones swap the root and the certificate each time: generations come and go
# while requests are served from both (the file caches, the TLS contexts)
mkcert gen2
for i in $(seq 1 30); do
    if [ $((i % 2)) = 1 ]; then install gen2; RC_ROOT=$T/www2 rconf; else install gen1; rconf; fi
    hup_ok "storm $i"
done >"$T/storm.tap"
W=$(grep -c '^ok' "$T/storm.tap")
expect "30 SIGHUP, each waited for, root and certificate swapped each time: 30 reloads" "$W" 30
grep '^not ok' "$T/storm.tap" | head -3
for b in 1 2 3 4; do
    for i in 1 2 3 4 5; do kill -HUP "$PID"; done
    sleep 0.3
done
# settle: the log's count of reloads stops moving
prev=-1
for _ in $(seq 1 $((50 * MULT))); do
    cur=$(loaded_lines)
    [ "$cur" = "$prev" ] && break
    prev=$cur
    sleep 0.5
done
S=$(tcurl "$BASE/status")
GEN=$(num "$(jq -r .reload.generation <<<"$S")") DONE=$(num "$(jq -r .reload.done <<<"$S")")
FAILED=$(jq -r .reload.failed <<<"$S")
echo "# after 50 SIGHUP: generation $GEN, done $DONE (from $DONE0 before the storm), failed $FAILED"
expect "generation = 1 + reloads done" "$GEN" $((1 + DONE))
expect "reloads failed: 0" "$FAILED" 0
if [ $((DONE - DONE0)) -ge 31 ] && [ $((DONE - DONE0)) -le 50 ]; then
    ok "$((DONE - DONE0)) reloads for 50 signals (30 waited for, 20 back to back may coalesce, at least one of them done)"
else not_ok "$((DONE - DONE0)) reloads for 50 signals (expected 31..50)"; fi
expect "every reload done has its log line" "$(loaded_lines)" "$DONE"
G=$GEN
hup_ok "one more SIGHUP after the storm"
expect "...generation $((GEN + 1))" "$(rstat generation)" $((GEN + 1))
serves() { [ "$(tcurl "$BASE/which.txt")" = "$1" ]; }
# a SIGHUP that comes while a reload runs is not lost: the file as of the last signal applies
for i in 1 2 3 4 5; do
    RC_ROOT=$T/www rconf
    kill -HUP "$PID"
    RC_ROOT=$T/www2 rconf
    kill -HUP "$PID"
    wait_until 10 serves www2
    expect "back-to-back SIGHUP round $i: the configuration of the last signal is in force" "$(tcurl "$BASE/which.txt")" www2
    rconf
    kill -HUP "$PID"
    wait_until 10 serves www
done >"$T/last.tap"
expect "the last signal's configuration won in 5 rounds of 2 back-to-back SIGHUP" "$(grep -c '^ok' "$T/last.tap")" 5
grep '^not ok' "$T/last.tap" | head -3 | sed 's/^/# /'
wait "$H2" "$H1"
h2load_check "h2load HTTP/2 through the storm" "$T/storm.h2"
h2load_check "h2load HTTP/1.1 through the storm" "$T/storm.h1"
conn_loop_check storm13
conn_loop_check storm12
wait "$SLOW"
expect "a download through the storm completes" "$?" 0
expect "...whole" "$(sha256sum <"$T/storm.bin" | cut -d' ' -f1)" "$BIG_SUM"
# descriptors: once the clients are gone, the same number as before (no listener, file or
# ticket-key file left open per generation)
fds_back() { [ "$(fds)" -le "$FD0" ]; }
wait_until 10 fds_back
expect "descriptors after the storm and its clients: as before ($FD0, the site's cached files aside)" "$(fds)" "$FD0"
sleep $((2 * MULT))
R1=$(rss_kb "$PID")
echo "# RSS before the storm $R0 kB, after $R1 kB"
if sanitized; then
    ok "# SKIP RSS bound in a sanitizer build (quarantine); LeakSanitizer checks at exit"
elif [ $((R1 - R0)) -le 10240 ]; then ok "RSS after 50 reloads within 10 MB of before (+$((R1 - R0)) kB)"
else not_ok "RSS after 50 reloads grew by $((R1 - R0)) kB (bound 10240)"; fi
# (but the one at start about running as root, when the suite runs as root)
WARNS=$(grep -E '\[(warn|error)\]' "$T/error.log" | grep -v 'running as root')
expect "the error log has no [warn] or [error] line" "$(grep -c . <<<"$WARNS")" 0
printf '%s\n' "$WARNS" | head -5 | sed 's/^/#   /'
stop_server
check_server_log
exit $((FAILS > 0))

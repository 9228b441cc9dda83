#!/usr/bin/env bash
# Benchmarks tessera against nginx and h2o on loopback, with equivalent set-ups, and writes
# bench/results/latest.json, bench/results/chart.png, BENCHMARKS.md and BENCHMARKS.png.
# Normally run through `make bench`, which installs wrk, nginx, h2o and gnuplot and builds
# build/tessera, build/tlsprobe and build/resume-load first. `bench/run.sh --help` for options.
set -u -o pipefail

usage() {
    cat <<'EOF'
usage: bench/run.sh [BUILD_DIR]        (BUILD_DIR defaults to build)

Environment:
  BENCH_DURATION=S     seconds per measurement (default 4)
  BENCH_REPS=N         repetitions of each measurement per server (default 3)
  BENCH_SCENARIOS=L    comma- or space-separated subset, by number or name (default all):
                         1 ka1k     keep-alive 1 KiB, wrk -t2 -c64
                         2 ka100k   keep-alive 100 KiB, wrk -t2 -c32
                         3 ka10m    10 MiB files, wrk -t2 -c8
                         4 full     a full TLS 1.3 handshake per connection (no session
                                    offered), build/resume-load --no-resume -t2 -c64
                         5 newconn  a new connection per request, resumption allowed,
                                    wrk -t2 -c64 -H 'Connection: close'
                         6 res13    resumed TLS 1.3 handshakes, build/resume-load -t2 -c16
                         7 res12    resumed TLS 1.2 handshakes, build/resume-load -t2 -c16
                         8 latency  p50/p99 latency at keep-alive 1 KiB, wrk --latency -t2 -c64
                         9 idlemem  resident memory per idle TLS connection (2,000 held)
                        13 h2idlemem resident memory per idle HTTP/2 connection (1,000 held,
                                    one request each, tests/tools/h2end.py)
                        10 h2ka1k   HTTP/2 1 KiB, h2load -c32 -m10
                        11 h2ka100k HTTP/2 100 KiB, h2load -c32 -m4
                        12 h2fair   HTTP/2 fairness: 1 KiB latency beside a 10 MiB download
                                    on the same connection (bench/h2fair.py)
                       A server that does not select h2 in ALPN gets n/a in 10-13.
  BENCH_SERVERS=L      servers to compare (default "tessera nginx h2o")
  BENCH_WARMUP=S       warm-up seconds per server before each scenario (default 1; 0: none)
  BENCH_IDLE_CONNS=N   connections held for idlemem (default 2000)
  BENCH_SITES=1        tessera with three sites (SNI lookup and a context switch per handshake)
  BENCH_RESUME_CONC=N  resume-load concurrency (default 16)
  BENCH_UPDATE_DOCS=0  do not rewrite BENCHMARKS.md / BENCHMARKS.png (default 1)
  BENCH_REPORT_ONLY=1  measure nothing: redo the reports from the last run's raw figures
Results: table on stdout, bench/results/latest.json, bench/results/chart.png, raw tool output
in bench/results/run/logs/. Ratios compare servers measured in the same run on the same
machine; the load generator shares the CPU with the servers.
EOF
}
case "${1:-}" in -h | --help) usage; exit 0 ;; esac

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-build}
case "$BUILD" in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
DUR=${BENCH_DURATION:-4}
REPS=${BENCH_REPS:-3}
WARMUP=${BENCH_WARMUP:-1}
IDLE_CONNS=${BENCH_IDLE_CONNS:-2000}
RESUME_CONC=${BENCH_RESUME_CONC:-16}
H2_IDLE_CONNS=1000
UPDATE_DOCS=${BENCH_UPDATE_DOCS:-1}
read -r -a SERVERS <<<"${BENCH_SERVERS:-tessera nginx h2o}"
RESULTS=$ROOT/bench/results
RUN=$RESULTS/run
LOGS=$RUN/logs
RAW=$RUN/raw.tsv

die() { echo "bench: $*" >&2; exit 1; }
note() { printf '%s bench: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
is_uint() { case "$1" in '' | *[!0-9]*) return 1 ;; esac; }
is_uint "$DUR" && [ "$DUR" -ge 1 ] && [ "$DUR" -le 3600 ] || die "BENCH_DURATION must be 1..3600"
is_uint "$REPS" && [ "$REPS" -ge 1 ] && [ "$REPS" -le 50 ] || die "BENCH_REPS must be 1..50"
is_uint "$WARMUP" && [ "$WARMUP" -le 60 ] || die "BENCH_WARMUP must be 0..60"
is_uint "$IDLE_CONNS" && [ "$IDLE_CONNS" -ge 100 ] && [ "$IDLE_CONNS" -le 9000 ] ||
    die "BENCH_IDLE_CONNS must be 100..9000"
is_uint "$RESUME_CONC" && [ "$RESUME_CONC" -ge 1 ] && [ "$RESUME_CONC" -le 1000 ] ||
    die "BENCH_RESUME_CONC must be 1..1000"
for s in "${SERVERS[@]}"; do
    case "$s" in tessera | nginx | h2o) ;; *) die "unknown server '$s' in BENCH_SERVERS" ;; esac
done
[ "${#SERVERS[@]}" -ge 1 ] || die "BENCH_SERVERS is empty"

# ------------------------------------------------------------------ scenarios
ALL_SCEN=(ka1k ka100k ka10m full newconn res13 res12 latency idlemem h2ka1k h2ka100k h2fair h2idlemem)
SCEN=()
for w in ${BENCH_SCENARIOS:-${ALL_SCEN[*]}}; do
    for x in ${w//,/ }; do
        case "$x" in [1-9] | 1[0-3]) x=${ALL_SCEN[$((x - 1))]} ;; esac
        found=0
        for y in "${ALL_SCEN[@]}"; do [ "$x" = "$y" ] && found=1; done
        [ "$found" = 1 ] || die "unknown scenario '$x' (see --help)"
        case " ${SCEN[*]:-} " in *" $x "*) ;; *) SCEN+=("$x") ;; esac
    done
done
[ "${#SCEN[@]}" -ge 1 ] || die "BENCH_SCENARIOS selects nothing"

# Metrics (rows of the report). Fields: id|scenario|title|unit|better|target kind|target text
METRICS=(
    "ka1k|ka1k|1a. keep-alive 1 KiB (wrk -t2 -c64)|req/s|higher|best:1.0|>= best of nginx/h2o"
    "ka1k_cpu|ka1k|1b. keep-alive 1 KiB: server CPU per request|µs/req|lower|none|-"
    "ka100k|ka100k|2. keep-alive 100 KiB (wrk -t2 -c32)|req/s|higher|best:1.0|>= best of nginx/h2o"
    "ka10m|ka10m|3. 10 MiB file (wrk -t2 -c8)|req/s|higher|nginx:1.0|>= nginx"
    "full|full|4a. full TLS 1.3 handshake per connection, no resumption (resume-load --no-resume -t2 -c64)|conn/s|higher|best:0.95|>= 0.95 x best peer"
    "full_cpu|full|4b. server CPU per full handshake (and its 1 KiB request)|µs/conn|lower|none|-"
    "newconn|newconn|5. new connection per request, resumption allowed (wrk -c64, Connection: close)|req/s|higher|none|-"
    "res13|res13|6. resumed TLS 1.3 handshakes (resume-load -t2 -c${RESUME_CONC})|conn/s|higher|nginx:1.0|>= nginx"
    "res12|res12|7. resumed TLS 1.2 handshakes (resume-load -t2 -c${RESUME_CONC})|conn/s|higher|nginx:1.0|>= nginx"
    "lat50|latency|8a. latency p50, keep-alive 1 KiB (wrk -c64)|ms|lower|none|-"
    "lat99|latency|8b. latency p99, keep-alive 1 KiB (wrk -c64)|ms|lower|nginxlow:1.0|<= nginx"
    "idlemem|idlemem|9. memory per idle TLS connection, HTTP/1.1 (${IDLE_CONNS} held)|KiB/conn|lower|abs:8|<= 8 KiB/conn"
    "h2ka1k|h2ka1k|10a. HTTP/2 1 KiB (h2load -c32 -m10)|req/s|higher|none|-"
    "h2ka1k_cpu|h2ka1k|10b. HTTP/2 1 KiB: server CPU per request|µs/req|lower|none|-"
    "h2ka100k|h2ka100k|11a. HTTP/2 100 KiB (h2load -c32 -m4)|req/s|higher|none|-"
    "h2ka100k_cpu|h2ka100k|11b. HTTP/2 100 KiB: server CPU per request|µs/req|lower|none|-"
    "h2fair50|h2fair|12a. HTTP/2 1 KiB p50 beside a 10 MiB download, same connection|ms|lower|none|-"
    "h2fair99|h2fair|12b. HTTP/2 1 KiB p99 beside a 10 MiB download, same connection|ms|lower|none|-"
    "h2idlemem|h2idlemem|13. memory per idle HTTP/2 connection (${H2_IDLE_CONNS} held, one request each)|KiB/conn|lower|none|-"
)

# ------------------------------------------------------------------ processes
PIDS=()      # everything started in the background, stopped by PID at exit
declare -A SPID # server name -> main PID

descendants() { # PID -> PID and all its descendants, one a line
    ps -e -o pid=,ppid= 2>/dev/null | awk -v root="$1" '
        { parent[$1] = $2; pids[NR] = $1 }
        END { print root; n = 1; list[1] = root
              for (changed = 1; changed; ) { changed = 0
                  for (i = 1; i <= NR; i++) { p = pids[i]
                      if (!(p in seen) && (parent[p] in inlist || parent[p] == root)) {
                          seen[p] = 1; inlist[p] = 1; print p; changed = 1 } } } }'
}

stop_pid() { # PID [seconds]: TERM, wait, then KILL whatever of its tree is left
    local pid=$1 limit=${2:-10} tree i
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return 0; }
    tree=$(descendants "$pid")
    kill -TERM "$pid" 2>/dev/null
    for ((i = 0; i < limit * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    for p in $tree; do kill -KILL "$p" 2>/dev/null; done
    wait "$pid" 2>/dev/null
    return 0
}

cleanup() {
    local p
    trap - EXIT INT TERM
    for p in "${PIDS[@]}"; do stop_pid "$p" 5; done
}
trap cleanup EXIT
trap 'note "interrupted"; exit 130' INT TERM

if [ "${BENCH_REPORT_ONLY:-0}" = 1 ]; then
    # Rebuild the table, JSON, chart and BENCHMARKS.md from the last run's raw figures.
    [ -s "$RAW" ] && [ -s "$RUN/meta.env" ] || die "no previous run in $RUN"
    # shellcheck source=/dev/null
    . "$RUN/meta.env"
    note "report only, from the run of $DATE"
else
# ------------------------------------------------------------------ preparation
for t in wrk nginx h2o gnuplot openssl curl ss awk jq; do
    command -v "$t" >/dev/null || die "$t is missing: run 'make bench' (it calls .ci/deps bench)"
done
case " ${SCEN[*]} " in *" h2"*)
    command -v h2load >/dev/null || die "h2load is missing: run 'make bench' (nghttp2-client)"
    /usr/bin/python3 -c 'import h2' 2>/dev/null || die "python3-h2 is missing: run 'make bench'" ;;
esac
for b in tessera tlsprobe resume-load; do
    [ -x "$BUILD/$b" ] || die "$BUILD/$b is missing: run 'make bench' (or make all)"
done

hard=$(ulimit -Hn)
if [ "$hard" = unlimited ] || [ "$hard" -ge 20000 ]; then ulimit -n 20000; else ulimit -n "$hard"; fi
[ "$(ulimit -n)" -ge $((IDLE_CONNS + 200)) ] ||
    note "warning: open-file limit $(ulimit -n) is low for $IDLE_CONNS idle connections"

rm -rf "$RUN"
mkdir -p "$RUN"/{www,tls,nginx/tmp,h2o,tessera} "$LOGS" || die "cannot create $RUN"
chmod 755 "$RESULTS" "$RUN" "$RUN/www"
# Private copies of the binaries: a rebuild of build/ during the run cannot change what is measured.
mkdir -p "$RUN/bin"
for b in tessera tlsprobe resume-load; do cp "$BUILD/$b" "$RUN/bin/$b" || die "cannot copy $BUILD/$b"; done
BIN=$RUN/bin
V_TESSERA=$("$BIN/tessera" --version 2>/dev/null | head -n 1)
: >"$RAW"

# One throwaway CA and an ECDSA P-256 server certificate for localhost and 127.0.0.1.
mkcerts() {
    local d=$RUN/tls
    openssl ecparam -name prime256v1 -genkey -noout -out "$d/ca.key" &&
        openssl req -x509 -new -key "$d/ca.key" -sha256 -days 7 -subj "/CN=tessera bench CA" \
            -addext "basicConstraints=critical,CA:TRUE" \
            -addext "keyUsage=critical,keyCertSign,cRLSign" -out "$d/ca.crt" &&
        openssl ecparam -name prime256v1 -genkey -noout -out "$d/server.key" &&
        openssl req -new -key "$d/server.key" -subj "/CN=localhost" -out "$d/server.csr" &&
        printf '%s\n' "subjectAltName=DNS:localhost,IP:127.0.0.1" "basicConstraints=CA:FALSE" \
            "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth" >"$d/ext.cnf" &&
        openssl x509 -req -in "$d/server.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" \
            -CAcreateserial -days 7 -sha256 -extfile "$d/ext.cnf" -out "$d/server.crt" &&
        openssl verify -CAfile "$d/ca.crt" "$d/server.crt" >/dev/null
}
mkcerts >"$LOGS/certs.log" 2>&1 || { cat "$LOGS/certs.log" >&2; die "certificate generation failed"; }
CA=$RUN/tls/ca.crt CERT=$RUN/tls/server.crt KEY=$RUN/tls/server.key

# The site: a 1 KiB HTML page, a 100 KiB and a 10 MiB file.
{
    printf '<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>1 KiB</title></head><body>\n'
    for i in $(seq 1 40); do printf '<p>line %02d of the benchmark page</p>\n' "$i"; done
} | head -c 1009 >"$RUN/www/1k.html"
printf '\n</body></html>\n' >>"$RUN/www/1k.html"
truncate -s 1024 "$RUN/www/1k.html"
head -c 102400 /dev/urandom >"$RUN/www/100k.bin"
head -c 10485760 /dev/urandom >"$RUN/www/10m.bin"
chmod 644 "$RUN"/www/*

# The clients (wrk, tlsprobe, openssl s_client) offer one TLS 1.3 suite and one TLS 1.2 cipher,
# so every server negotiates the same thing whatever its own preference: h2o 2.2.5 does TLS 1.3
# in picotls and cannot be told its TLS 1.3 suite order.
CLIENT_CNF=$RUN/client-openssl.cnf
cat >"$CLIENT_CNF" <<'EOF'
openssl_conf = bench_init
[bench_init]
ssl_conf = bench_ssl
[bench_ssl]
system_default = bench_client
[bench_client]
Ciphersuites = TLS_AES_128_GCM_SHA256
CipherString = ECDHE-ECDSA-AES128-GCM-SHA256
EOF
TLS13_SUITE=TLS_AES_128_GCM_SHA256
TLS12_CIPHER=ECDHE-ECDSA-AES128-GCM-SHA256

# Ports below the ephemeral range, free now, distinct.
declare -A PORT
pick_port() {
    local p i
    for ((i = 0; i < 200; i++)); do
        p=$((11000 + RANDOM % 9000))
        case " ${PORT[*]:-} " in *" $p "*) continue ;; esac
        ss -Htan "( sport = :$p or dport = :$p )" 2>/dev/null | grep -q . && continue
        echo "$p"
        return 0
    done
    return 1
}
for s in "${SERVERS[@]}"; do PORT[$s]=$(pick_port) || die "no free port"; done

# ------------------------------------------------------------------ server configurations
# No per-connection request limit: h2load does not reconnect, so the default 10000 ended an
# HTTP/2 run after 32 x 10000 requests, whatever the server could do (h2o has no such limit).
# BENCH_SITES=1: tessera serves the default site "localhost" beside two more sites (one
# wildcard), so every handshake goes through the SNI lookup and a switch of SSL_CTX.
sites_conf() {
    [ "${BENCH_SITES:-0}" = 1 ] || return 0
    local s='{"root": "'"$RUN/www"'", "certificates": [{"certificate": "'"$CERT"'", "key": "'"$KEY"'"}]'
    echo '  "server_names": ["localhost"],'
    echo '  "sites": ['"$s"', "server_names": ["a.bench.test"]}, '"$s"', "server_names": ["*.b.bench.test"]}],'
}
write_tessera_conf() {
    cat >"$RUN/tessera/tessera.json" <<EOF
{
$(sites_conf)
  "listen": "127.0.0.1:${PORT[tessera]}",
  "root": "$RUN/www",
  "workers": 2,
  "tls": {
    "certificate": "$CERT",
    "key": "$KEY",
    "client_auth": "none",
    "protocols": ["TLSv1.2", "TLSv1.3"],
    "session_tickets": true
  },
  "log": {"access": "off", "error": "$RUN/tessera/error.log", "level": "warn"},
  "limits": {"max_connections": 20000, "max_requests_per_connection": 0},
  "timeouts": {"keepalive_s": 120, "request_header_s": 120}
}
EOF
}

write_nginx_conf() {
    local user=""
    [ "$(id -u)" -eq 0 ] && user="user root root;"
    cat >"$RUN/nginx/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes 2;
worker_rlimit_nofile 20000;
pid $RUN/nginx/nginx.pid;
error_log $RUN/nginx/error.log warn;
$user
events {
    worker_connections 10240;
}
http {
    access_log off;
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    server_tokens off;
    keepalive_timeout 120s;
    keepalive_requests 10000;
    client_header_timeout 120s;
    client_body_temp_path $RUN/nginx/tmp/body;
    proxy_temp_path $RUN/nginx/tmp/proxy;
    fastcgi_temp_path $RUN/nginx/tmp/fastcgi;
    uwsgi_temp_path $RUN/nginx/tmp/uwsgi;
    scgi_temp_path $RUN/nginx/tmp/scgi;
    server {
        listen 127.0.0.1:${PORT[nginx]} ssl http2;
        server_name localhost;
        root $RUN/www;
        ssl_certificate $CERT;
        ssl_certificate_key $KEY;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305;
        ssl_prefer_server_ciphers on;
        ssl_ecdh_curve X25519:prime256v1;
        ssl_conf_command Ciphersuites TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256;
        ssl_session_cache shared:SSL:20m;
        ssl_session_timeout 300s;
        ssl_session_tickets on;
    }
}
EOF
}

write_h2o_conf() {
    local user=""
    [ "$(id -u)" -eq 0 ] && user="user: root"
    cat >"$RUN/h2o/h2o.conf" <<EOF
num-threads: 2
pid-file: $RUN/h2o/h2o.pid
error-log: $RUN/h2o/error.log
$user
max-connections: 20000
http1-request-timeout: 120
http2-idle-timeout: 120
ssl-session-resumption:
  mode: all
listen:
  host: 127.0.0.1
  port: ${PORT[h2o]}
  ssl:
    certificate-file: $CERT
    key-file: $KEY
    minimum-version: TLSv1.2
    cipher-suite: ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305
    cipher-preference: server
    neverbleed: OFF
    ocsp-update-interval: 0
hosts:
  default:
    paths:
      /:
        file.dir: $RUN/www
EOF
}

check_conf() {
    case "$1" in
    tessera) write_tessera_conf && "$BIN/tessera" --config "$RUN/tessera/tessera.json" --check-config ;;
    nginx) write_nginx_conf && nginx -t -q -c "$RUN/nginx/nginx.conf" -p "$RUN/nginx/" -e "$RUN/nginx/error.log" ;;
    h2o) write_h2o_conf && h2o -t -c "$RUN/h2o/h2o.conf" ;;
    esac
}

start_server() {
    local s=$1 pid
    case "$s" in
    tessera) "$BIN/tessera" --config "$RUN/tessera/tessera.json" >>"$RUN/tessera/stdout.log" 2>&1 </dev/null & ;;
    nginx) nginx -c "$RUN/nginx/nginx.conf" -p "$RUN/nginx/" -e "$RUN/nginx/error.log" >>"$RUN/nginx/stdout.log" 2>&1 </dev/null & ;;
    h2o) h2o -c "$RUN/h2o/h2o.conf" >>"$RUN/h2o/stdout.log" 2>&1 </dev/null & ;;
    esac
    pid=$!
    SPID[$s]=$pid
    PIDS+=("$pid")
    wait_ready "$s" || { stop_server "$s"; return 1; }
}

stop_server() {
    local s=$1 pid=${SPID[$1]:-}
    [ -n "$pid" ] || return 0
    stop_pid "$pid" 15
    SPID[$s]=
}

url() { echo "https://localhost:${PORT[$1]}$2"; }
fetch() { # SERVER PATH -> "status size"
    curl -sS --max-time 30 --cacert "$CA" --resolve "localhost:${PORT[$1]}:127.0.0.1" \
        -o /dev/null -w '%{http_code} %{size_download}' "$(url "$1" "$2")" 2>/dev/null
}

wait_ready() { # up to 15 s for the server to answer
    local s=$1 i
    for ((i = 0; i < 75; i++)); do
        kill -0 "${SPID[$s]}" 2>/dev/null || return 1
        [ "$(fetch "$s" /1k.html)" = "200 1024" ] && return 0
        sleep 0.2
    done
    return 1
}

alive() { [ -n "${SPID[$1]:-}" ] && kill -0 "${SPID[$1]}" 2>/dev/null; }

ensure_alive() { # restarts a server that died during a measurement, once per call
    alive "$1" && return 0
    note "warning: $1 is not running; restarting it (see $RUN/$1/)"
    echo "$1 restarted before $2" >>"$RUN/incidents.txt"
    stop_server "$1"
    start_server "$1"
}

declare -A TLS13 TLS12
verify_server() { # the same files, both protocols, the same suite and group everywhere
    local s=$1 f want got line
    for f in "1k.html 1024" "100k.bin 102400" "10m.bin 10485760"; do
        set -- $f
        want="200 $2"
        got=$(fetch "$s" "/$1")
        [ "$got" = "$want" ] || { note "$s: GET /$1 gave '$got', expected '$want'"; return 1; }
    done
    for v in 1_3 1_2; do
        line=$(OPENSSL_CONF=$CLIENT_CNF timeout 10 openssl s_client -connect "127.0.0.1:${PORT[$s]}" \
            -servername localhost -CAfile "$CA" -verify_return_error "-tls$v" </dev/null 2>&1 |
            awk '/^New, TLS/ { sub(/,$/, "", $2); proto = $2; c = $NF }
                 /^Server Temp Key:/ { g = $4; sub(/,$/, "", g) }
                 /Verify return code:/ { for (i = 1; i < NF; i++) if ($i == "code:") vr = $(i + 1) }
                 END { printf "%s %s %s verify=%s", proto, c, g, vr }')
        case "$v" in 1_3) TLS13[$s]=$line ;; 1_2) TLS12[$s]=$line ;; esac
        case "$line" in
        *"verify=0") ;;
        *) note "$s: TLS ${v/_/.} check failed: $line"; return 1 ;;
        esac
    done
    note "$s on port ${PORT[$s]}: ${TLS13[$s]% verify=0}; ${TLS12[$s]% verify=0}"
}

# ------------------------------------------------------------------ measurement helpers
record() { printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "${5:-}" >>"$RAW"; }

# wrk output -> "rps p50_ms p99_ms errors" (NA when missing)
parse_wrk() {
    awk 'function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0
                          if (v ~ /m$/) return v * 60000; if (v ~ /s$/) return v * 1000; return v }
        /^Requests\/sec:/ { rps = $2 }
        /^ +50%/ { p50 = ms($2) } /^ +99%/ { p99 = ms($2) }
        /Socket errors:/ { gsub(/,/, ""); err += $4 + $6 + $8 + $10 }
        /Non-2xx or 3xx responses:/ { err += $NF }
        END { printf "%s %s %s %d\n", (rps == "" ? "NA" : rps), (p50 == "" ? "NA" : p50),
                     (p99 == "" ? "NA" : p99), err }' "$1"
}

run_wrk() { # SERVER LOGFILE SECONDS WRK-ARGS... -> parse_wrk line
    local s=$1 log=$2 secs=$3
    shift 3
    OPENSSL_CONF=$CLIENT_CNF timeout -k 5 $((secs + 60)) wrk "$@" -d"${secs}s" --timeout 10s \
        "$(url_ip "$s")" >"$log" 2>&1
    parse_wrk "$log"
}
url_ip() { echo "https://127.0.0.1:${PORT[$1]}${WRK_PATH}"; }

run_resume() { # SERVER LOGFILE SECONDS CONCURRENCY RESUME-LOAD-ARGS... -> key=value line
    local s=$1 log=$2 secs=$3 conc=$4
    shift 4
    timeout -k 5 $((secs + 60)) "$BIN/resume-load" --port "${PORT[$s]}" --path /1k.html \
        --concurrency "$conc" --threads 2 --duration "$secs" "$@" --cafile "$CA" \
        --ciphersuites "$TLS13_SUITE" --ciphers "$TLS12_CIPHER" >"$log" 2>&1
    tail -n 1 "$log"
}
# resume-load arguments per scenario: full handshakes never offer a session
resume_args() { # SCENARIO -> CONCURRENCY ARGS...
    case "$1" in
    full) echo "64 --tls13 --no-resume" ;;
    res13) echo "$RESUME_CONC --tls13" ;;
    res12) echo "$RESUME_CONC --tls12" ;;
    esac
}
kv() { # KEY LINE -> value
    printf '%s\n' "$2" | tr ' ' '\n' | awk -F= -v k="$1" '$1 == k { print $2; exit }'
}

rss_kib() { # PID -> resident KiB summed over the process and its descendants
    local total=0 p v
    for p in $(descendants "$1"); do
        v=$(awk '/^VmRSS:/ { print $2 }' "/proc/$p/status" 2>/dev/null)
        total=$((total + ${v:-0}))
    done
    echo "$total"
}

# CPU accounting around a measurement: the whole machine (/proc/stat), the server's processes,
# and this script's reaped children (the load generator). What is left is foreign work on the
# machine, which skews the figures; it is recorded with every measurement.
HZ=$(getconf CLK_TCK 2>/dev/null || echo 100)
cpu_snap() { # SERVER_PID -> "seconds busy_ticks server_ticks children_ticks"
    local t busy srv=0 p v ch
    t=$(date +%s.%N)
    busy=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat)
    for p in $(descendants "$1"); do
        v=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | awk '{ print $12 + $13 }')
        srv=$((srv + ${v:-0}))
    done
    ch=$(sed 's/.*) //' "/proc/$$/stat" | awk '{ print $14 + $15 }')
    echo "$t $busy $srv $ch"
}
cpu_used() { # BEFORE AFTER -> "srv_cpu=cores cli_cpu=cores other_cpu=cores srv_cpu_s=seconds"
    awk -v a="$1" -v b="$2" -v hz="$HZ" 'BEGIN {
        split(a, x, " "); split(b, y, " "); dt = y[1] - x[1]; if (dt <= 0) dt = 1
        srv = (y[3] - x[3]) / hz / dt; cli = (y[4] - x[4]) / hz / dt; all = (y[2] - x[2]) / hz / dt
        other = all - srv - cli; if (other < 0) other = 0
        printf "srv_cpu=%.2f cli_cpu=%.2f other_cpu=%.2f srv_cpu_s=%.2f", srv, cli, other, (y[3] - x[3]) / hz }'
}
# Server CPU time per request in microseconds: the server's utime+stime (/proc/PID/stat, all
# its processes) over the measurement, divided by the requests the client completed.
cpu_per() { # CPU-LINE REQUESTS -> microseconds, or NA
    local s
    s=$(kv srv_cpu_s "$1")
    awk -v s="$s" -v n="$2" 'BEGIN { if (s == "" || n == "" || n + 0 <= 0) print "NA"; else printf "%.1f\n", s * 1e6 / n }'
}
hs_delta() { # "full resumed" BEFORE AFTER -> "hs_full=N hs_resumed=N" (our own /status read is one of them)
    awk -v a="$1" -v b="$2" 'BEGIN { split(a, x, " "); split(b, y, " ")
        if (x[1] == "" || y[1] == "" || x[1] == "null") exit
        printf "hs_full=%d hs_resumed=%d", y[1] - x[1], y[2] - x[2] }'
}
wrk_requests() { awk '/ requests in / { print $1; exit }' "$1"; }
h2load_requests() { awk '/^requests:/ { for (i = 1; i <= NF; i++) if ($(i + 1) ~ /^succeeded/) print $i; exit }' "$1"; }
# tessera's own count of its handshakes: "full resumed" from /status
tessera_handshakes() {
    curl -sS --max-time 10 --cacert "$CA" --resolve "localhost:${PORT[tessera]}:127.0.0.1" \
        "$(url tessera /status)" 2>/dev/null | jq -r '"\(.tls.handshakes.full) \(.tls.handshakes.resumed)"' 2>/dev/null
}

# Servers in a different order each repetition, so no server always runs first.
order_for_rep() {
    local r=$1 n=${#SERVERS[@]} i
    for ((i = 0; i < n; i++)); do printf '%s ' "${SERVERS[$(((i + r - 1) % n))]}"; done
}

measure_throughput() { # SCENARIO
    local sc=$1 rep s log rps p50 p99 err line c0 cpu
    local -a wargs=()
    case "$sc" in
    ka1k | latency) WRK_PATH=/1k.html; wargs=(-t2 -c64) ;;
    ka100k) WRK_PATH=/100k.bin; wargs=(-t2 -c32) ;;
    ka10m) WRK_PATH=/10m.bin; wargs=(-t2 -c8) ;;
    newconn) WRK_PATH=/1k.html; wargs=(-t2 -c64 -H "Connection: close") ;;
    esac
    [ "$sc" = latency ] && wargs+=(--latency)
    if [ "$WARMUP" -gt 0 ]; then
        for s in "${SERVERS[@]}"; do
            ensure_alive "$s" "$sc warm-up" || continue
            case "$sc" in
            full | res13 | res12)
                # shellcheck disable=SC2046 # resume_args is a word list on purpose
                run_resume "$s" "$LOGS/$sc-$s-warmup.txt" "$WARMUP" $(resume_args "$sc") >/dev/null ;;
            *) run_wrk "$s" "$LOGS/$sc-$s-warmup.txt" "$WARMUP" "${wargs[@]}" >/dev/null ;;
            esac
        done
    fi
    for ((rep = 1; rep <= REPS; rep++)); do
        for s in $(order_for_rep "$rep"); do
            log=$LOGS/$sc-$s-$rep.txt
            if ! ensure_alive "$s" "$sc rep $rep"; then
                note "$s: could not be restarted; $sc rep $rep skipped"
                continue
            fi
            hs0="" hs=""
            case "$s:$sc" in tessera:full | tessera:newconn) hs0=$(tessera_handshakes) ;; esac
            c0=$(cpu_snap "${SPID[$s]}")
            case "$sc" in
            full | res13 | res12)
                # shellcheck disable=SC2046 # resume_args is a word list on purpose
                line=$(run_resume "$s" "$log" "$DUR" $(resume_args "$sc"))
                cpu=$(cpu_used "$c0" "$(cpu_snap "${SPID[$s]}")")
                rps=$(kv per_sec "$line")
                if [ -z "$rps" ] || [ "$(kv conns "$line")" = 0 ]; then rps=NA; fi
                [ -n "$hs0" ] && hs=$(hs_delta "$hs0" "$(tessera_handshakes)")
                record "$sc" "$s" "$rep" "$rps" "reuse=$(kv ratio "$line") errors=$(kv errors "$line") conns=$(kv conns "$line") $hs $cpu"
                [ "$sc" = full ] && record full_cpu "$s" "$rep" "$(cpu_per "$cpu" "$(kv conns "$line")")" "$cpu"
                note "$sc $s rep $rep: ${rps} conn/s, reuse $(kv ratio "$line"), errors $(kv errors "$line"); $hs $cpu"
                ;;
            *)
                read -r rps p50 p99 err <<<"$(run_wrk "$s" "$log" "$DUR" "${wargs[@]}")"
                cpu=$(cpu_used "$c0" "$(cpu_snap "${SPID[$s]}")")
                [ -n "$hs0" ] && hs=$(hs_delta "$hs0" "$(tessera_handshakes)")
                if [ "$sc" = latency ]; then
                    record lat50 "$s" "$rep" "$p50" "errors=$err $cpu"
                    record lat99 "$s" "$rep" "$p99" "errors=$err rps=$rps $cpu"
                    note "$sc $s rep $rep: p50 ${p50} ms, p99 ${p99} ms (${rps} req/s), errors $err; $cpu"
                else
                    record "$sc" "$s" "$rep" "$rps" "errors=$err $hs $cpu"
                    [ "$sc" = ka1k ] && record ka1k_cpu "$s" "$rep" "$(cpu_per "$cpu" "$(wrk_requests "$log")")" "$cpu"
                    note "$sc $s rep $rep: ${rps} req/s, errors $err; $hs $cpu"
                fi
                ;;
            esac
        done
    done
}

# Whether a server selects h2 in ALPN (tessera does once its HTTP/2 codec is built in).
has_h2() {
    OPENSSL_CONF=$CLIENT_CNF timeout 10 openssl s_client -connect "127.0.0.1:${PORT[$1]}" -servername localhost \
        -CAfile "$CA" -alpn h2 </dev/null 2>&1 | grep -q '^ALPN protocol: h2$'
}

# h2load output -> "rps errors" (NA when missing)
parse_h2load() {
    awk '/^finished in/ { for (i = 1; i <= NF; i++) if ($(i + 1) ~ /^req\/s/) { rps = $i; sub(/,$/, "", rps) } }
         /^requests:/ { for (i = 1; i <= NF; i++) if ($(i + 1) ~ /^(failed|errored|timeout)/) err += $i }
         /^status codes:/ { for (i = 1; i <= NF; i++) if ($(i + 1) ~ /^[345]xx/) err += $i }
         END { printf "%s %d\n", (rps == "" ? "NA" : rps), err }' "$1"
}

run_h2load() { # SERVER LOGFILE SECONDS H2LOAD-ARGS... -> parse_h2load line
    local s=$1 log=$2 secs=$3
    shift 3
    timeout -k 5 $((secs + 60)) h2load "$@" -D "$secs" --ciphers="$TLS12_CIPHER" \
        --tls13-ciphers="$TLS13_SUITE" "https://127.0.0.1:${PORT[$s]}${H2_PATH}" >"$log" 2>&1
    parse_h2load "$log"
}

run_h2fair() { # SERVER LOGFILE SECONDS -> key=value line
    timeout -k 5 $(($3 + 60)) /usr/bin/python3 "$ROOT/bench/h2fair.py" --port "${PORT[$1]}" --cafile "$CA" \
        --big /10m.bin --small /1k.html --seconds "$3" >"$2" 2>&1
    tail -n 1 "$2"
}

# HTTP/2 scenarios; a server that does not select h2 is recorded as n/a (no_h2=1), not a failure.
measure_h2() { # SCENARIO
    local sc=$1 rep s log rps err line c0 cpu
    local -a hargs=()
    case "$sc" in
    h2ka1k) H2_PATH=/1k.html; hargs=(-c32 -m10 -t2) ;;
    h2ka100k) H2_PATH=/100k.bin; hargs=(-c32 -m4 -t2) ;;
    esac
    declare -A H2OK=()
    for s in "${SERVERS[@]}"; do
        ensure_alive "$s" "$sc" || continue
        if has_h2 "$s"; then H2OK[$s]=1; else note "$sc: $s does not select h2 in ALPN: n/a"; fi
        [ -n "${H2OK[$s]:-}" ] && [ "$WARMUP" -gt 0 ] || continue
        case "$sc" in
        h2fair) run_h2fair "$s" "$LOGS/$sc-$s-warmup.txt" "$WARMUP" >/dev/null ;;
        *) run_h2load "$s" "$LOGS/$sc-$s-warmup.txt" "$WARMUP" "${hargs[@]}" >/dev/null ;;
        esac
    done
    for ((rep = 1; rep <= REPS; rep++)); do
        for s in $(order_for_rep "$rep"); do
            if [ -z "${H2OK[$s]:-}" ]; then
                if [ "$sc" = h2fair ]; then record h2fair50 "$s" "$rep" NA no_h2=1; record h2fair99 "$s" "$rep" NA no_h2=1
                else record "$sc" "$s" "$rep" NA no_h2=1; fi
                continue
            fi
            log=$LOGS/$sc-$s-$rep.txt
            if ! ensure_alive "$s" "$sc rep $rep"; then
                note "$s: could not be restarted; $sc rep $rep skipped"
                continue
            fi
            c0=$(cpu_snap "${SPID[$s]}")
            if [ "$sc" = h2fair ]; then
                line=$(run_h2fair "$s" "$log" "$DUR")
                cpu=$(cpu_used "$c0" "$(cpu_snap "${SPID[$s]}")")
                err=$(kv errors "$line")
                record h2fair50 "$s" "$rep" "$(kv p50_ms "$line" | sed 's/^$/NA/')" "errors=${err:-1} small=$(kv small "$line") big_done=$(kv big_done "$line") $cpu"
                record h2fair99 "$s" "$rep" "$(kv p99_ms "$line" | sed 's/^$/NA/')" "errors=${err:-1} $cpu"
                note "$sc $s rep $rep: 1 KiB p50 $(kv p50_ms "$line") ms, p99 $(kv p99_ms "$line") ms ($(kv small "$line") requests, $(kv big_done "$line") x 10 MiB), errors ${err:-?}; $cpu"
            else
                read -r rps err <<<"$(run_h2load "$s" "$log" "$DUR" "${hargs[@]}")"
                cpu=$(cpu_used "$c0" "$(cpu_snap "${SPID[$s]}")")
                record "$sc" "$s" "$rep" "$rps" "errors=$err $cpu"
                record "${sc}_cpu" "$s" "$rep" "$(cpu_per "$cpu" "$(h2load_requests "$log")")" "$cpu"
                note "$sc $s rep $rep: ${rps} req/s, errors $err; $cpu"
            fi
        done
    done
}

# Idle memory: a freshly started server, one request, RSS; then N idle TLS connections, RSS.
measure_idlemem() {
    local rep s before after est failed hp log i per closed
    for ((rep = 1; rep <= REPS; rep++)); do
        for s in $(order_for_rep "$rep"); do
            log=$LOGS/idlemem-$s-$rep.txt
            stop_server "$s"
            if ! start_server "$s"; then
                note "$s: did not start for idlemem rep $rep"
                continue
            fi
            fetch "$s" /1k.html >/dev/null
            sleep 1
            before=$(rss_kib "${SPID[$s]}")
            OPENSSL_CONF=$CLIENT_CNF timeout -k 5 300 "$BIN/tlsprobe" hold --port "${PORT[$s]}" \
                --count "$IDLE_CONNS" --seconds 120 --ignore-stdin --timeout-ms 20000 \
                >"$log" 2>&1 </dev/null &
            hp=$!
            PIDS+=("$hp")
            for ((i = 0; i < 1200; i++)); do # up to 120 s for every connection to be up
                grep -qs '^established=' "$log" && break
                kill -0 "$hp" 2>/dev/null || break
                sleep 0.1
            done
            sleep 2 # let tickets and lazily allocated state settle
            after=$(rss_kib "${SPID[$s]}")
            stop_pid "$hp" 10
            est=$(awk -F'[ =]' '/^established=/ { print $2; exit }' "$log")
            failed=$(awk -F'[ =]' '/^established=/ { print $4; exit }' "$log")
            closed=$(awk '/^mode=hold/ { for (i = 1; i <= NF; i++) if ($i ~ /^closed_by_server=/) { sub(/.*=/, "", $i); print $i } }' "$log")
            if [ -n "$est" ] && [ "$est" -gt 0 ]; then
                per=$(awk -v a="$after" -v b="$before" -v n="$est" 'BEGIN { printf "%.2f", (a - b) / n }')
            else
                per=NA
            fi
            record idlemem "$s" "$rep" "$per" "before_kib=$before after_kib=$after established=${est:-0} failed=${failed:-NA} closed_by_server=${closed:-NA}"
            note "idlemem $s rep $rep: ${per} KiB/conn (RSS $before -> $after KiB, ${est:-0} established, ${failed:-?} failed, ${closed:-?} closed early)"
        done
    done
}

# Idle HTTP/2 memory: as idlemem, with h2 connections that each had one request answered.
measure_h2idlemem() {
    local rep s before after held failed hp log i per closed
    for ((rep = 1; rep <= REPS; rep++)); do
        for s in $(order_for_rep "$rep"); do
            log=$LOGS/h2idlemem-$s-$rep.txt
            stop_server "$s"
            if ! start_server "$s"; then
                note "$s: did not start for h2idlemem rep $rep"
                continue
            fi
            if ! has_h2 "$s"; then record h2idlemem "$s" "$rep" NA no_h2=1; continue; fi
            fetch "$s" /1k.html >/dev/null
            sleep 1
            before=$(rss_kib "${SPID[$s]}")
            timeout -k 5 300 /usr/bin/python3 "$ROOT/tests/tools/h2end.py" hold --port "${PORT[$s]}" \
                --cafile "$CA" --path /1k.html --count "$H2_IDLE_CONNS" --seconds 120 --ignore-stdin \
                >"$log" 2>&1 </dev/null &
            hp=$!
            PIDS+=("$hp")
            for ((i = 0; i < 1200; i++)); do # up to 120 s for every connection to be up
                grep -qs '^held=' "$log" && break
                kill -0 "$hp" 2>/dev/null || break
                sleep 0.1
            done
            sleep 2 # idle buffers given back after 200 ms, the heap trimmed within a second
            after=$(rss_kib "${SPID[$s]}")
            held=$(awk -F'[ =]' '/^held=/ { print $2; exit }' "$log")
            failed=$(awk -F'[ =]' '/^held=/ { print $4; exit }' "$log")
            stop_pid "$hp" 10
            closed=$(awk -F= '/^closed_by_server=/ { print $2; exit }' "$log")
            if [ -n "$held" ] && [ "$held" -gt 0 ]; then
                per=$(awk -v a="$after" -v b="$before" -v n="$held" 'BEGIN { printf "%.2f", (a - b) / n }')
            else
                per=NA
            fi
            record h2idlemem "$s" "$rep" "$per" "before_kib=$before after_kib=$after held=${held:-0} failed=${failed:-NA} closed_by_server=${closed:-NA}"
            note "h2idlemem $s rep $rep: ${per} KiB/conn (RSS $before -> $after KiB, ${held:-0} held, ${failed:-?} failed, ${closed:-?} closed early)"
        done
    done
}

# ------------------------------------------------------------------ run
# What else uses the CPU now (top's second sample: current use, not lifetime averages).
busy_others() {
    top -b -n 2 -d 1 -o %CPU 2>/dev/null | awk '/^top - / { n++ } n == 2 && $1 ~ /^[0-9]+$/ && $9 + 0 >= 5 { printf "%s%s %.0f%%", (c++ ? ", " : ""), $12, $9 }' |
        head -c 300
}
OTHERS0=$(busy_others)
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
if awk -v l="${LOAD0%% *}" 'BEGIN { exit !(l > 1.0) }'; then
    note "warning: load average is $LOAD0 before the run: other work on this machine would skew the figures"
    top -b -n 1 -o %CPU 2>/dev/null | sed -n '7,10p' | sed 's/^/    /' >&2
fi
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
[ -n "$(git -C "$ROOT" status --porcelain -- src 2>/dev/null)" ] && COMMIT+="+uncommitted src changes"
T0=$(date +%s)
DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ)
est=0
for sc in "${SCEN[@]}"; do
    case "$sc" in
    idlemem) est=$((est + REPS * ${#SERVERS[@]} * 12)) ;;
    h2idlemem) est=$((est + REPS * ${#SERVERS[@]} * 15)) ;;
    *) est=$((est + ${#SERVERS[@]} * (WARMUP + 1 + REPS * (DUR + 1)))) ;;
    esac
done
note "scenarios: ${SCEN[*]}; servers: ${SERVERS[*]}; ${REPS} x ${DUR}s each; about $((est / 60 + 1)) min"

for s in "${SERVERS[@]}"; do
    check_conf "$s" >"$LOGS/check-$s.txt" 2>&1 || { cat "$LOGS/check-$s.txt" >&2; die "$s: configuration rejected"; }
done
for s in "${SERVERS[@]}"; do
    start_server "$s" || { tail -n 20 "$RUN/$s"/*.log >&2; die "$s did not start (logs in $RUN/$s/)"; }
    verify_server "$s" || die "$s does not serve the benchmark site as expected"
done

for sc in "${SCEN[@]}"; do
    note "scenario $sc"
    case "$sc" in
    idlemem) measure_idlemem ;;
    h2idlemem) measure_h2idlemem ;;
    h2*) measure_h2 "$sc" ;;
    *) measure_throughput "$sc" ;;
    esac
done
for s in "${SERVERS[@]}"; do stop_server "$s"; done
ELAPSED=$(($(date +%s) - T0))
note "measurements done in ${ELAPSED}s"
LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)
OTHERS1=$(busy_others)
declare -p TLS13 TLS12 DATE ELAPSED COMMIT V_TESSERA LOAD0 LOAD1 OTHERS0 OTHERS1 SCEN SERVERS DUR REPS IDLE_CONNS RESUME_CONC >"$RUN/meta.env"
fi

# ------------------------------------------------------------------ report
# Summary per metric and server: n, values, median, reuse median, errors (from raw.tsv).
SUMMARY=$RUN/summary.tsv
awk -F'\t' '
    function median(list, n,   a, i, j, t) {
        for (i = 1; i <= n; i++) a[i] = list[i]
        for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j - 1] + 0 > a[j] + 0; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
        if (n == 0) return "NA"
        return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    function field(extra, key,   parts, i, n) {
        n = split(extra, parts, " ")
        for (i = 1; i <= n; i++) if (index(parts[i], key "=") == 1) return substr(parts[i], length(key) + 2)
        return ""
    }
    { k = $1 SUBSEP $2
      if (!(k in seen)) { seen[k] = 1; order[++nk] = k }
      all[k] = all[k] (all[k] == "" ? "" : ",") ($4 == "NA" ? "null" : $4)
      if ($4 != "NA") { n[k]++; vals[k, n[k]] = $4 }
      r = field($5, "reuse"); if (r != "") { nr[k]++; reuse[k, nr[k]] = r }
      e = field($5, "errors"); if (e != "") errs[k] += e
    }
    END {
        for (i = 1; i <= nk; i++) { k = order[i]; split(k, mk, SUBSEP)
            delete l; for (j = 1; j <= n[k]; j++) l[j] = vals[k, j]
            med = median(l, n[k] + 0)
            delete l; for (j = 1; j <= nr[k]; j++) l[j] = reuse[k, j]
            rm = nr[k] ? median(l, nr[k]) : "NA"
            printf "%s\t%s\t%d\t%s\t%s\t%s\t%d\n", mk[1], mk[2], n[k], all[k], med, rm, errs[k] }
    }' "$RAW" >"$SUMMARY"

# get METRIC SERVER FIELD(5=median,4=values,6=reuse,7=errors)
get() { awk -F'\t' -v m="$1" -v s="$2" -v f="$3" '$1 == m && $2 == s { print $f; found = 1 } END { if (!found) print "NA" }' "$SUMMARY"; }

# median of an extra key (srv_cpu, cli_cpu, ...) over a metric's runs for a server
extra_median() { # METRIC SERVER KEY
    awk -F'\t' -v m="$1" -v s="$2" -v k="$3" '
        $1 == m && $2 == s { n = split($5, p, " "); for (i = 1; i <= n; i++) if (index(p[i], k "=") == 1) v[++c] = substr(p[i], length(k) + 2) + 0 }
        END { if (!c) { print "NA"; exit }
              for (i = 2; i <= c; i++) for (j = i; j > 1 && v[j - 1] > v[j]; j--) { t = v[j]; v[j] = v[j - 1]; v[j - 1] = t }
              print (c % 2 ? v[(c + 1) / 2] : (v[c / 2] + v[c / 2 + 1]) / 2) }' "$RAW"
}
# foreign CPU over all measurements: "median max count_above_0.25 measurements"
FOREIGN=$(awk -F'\t' '$1 != "lat50" && $1 !~ /_cpu$/ { n = split($5, p, " "); for (i = 1; i <= n; i++) if (index(p[i], "other_cpu=") == 1) v[++c] = substr(p[i], 11) + 0 }
    END { if (!c) { print "NA NA 0 0"; exit }
          for (i = 2; i <= c; i++) for (j = i; j > 1 && v[j - 1] > v[j]; j--) { t = v[j]; v[j] = v[j - 1]; v[j - 1] = t }
          for (i = 1; i <= c; i++) if (v[i] > 0.25) hi++
          printf "%s %s %d %d\n", (c % 2 ? v[(c + 1) / 2] : (v[c / 2] + v[c / 2 + 1]) / 2), v[c], hi, c }' "$RAW")
read -r F_MED F_MAX F_HI F_N <<<"$FOREIGN"
if [ "$F_N" -gt 0 ]; then
    FOREIGN_TEXT="foreign CPU load (neither the server under test nor its load generator): median $F_MED cores, max $F_MAX, above 0.25 core in $F_HI of $F_N measurements"
else
    FOREIGN_TEXT=""
fi

# ratio of a server's median to the best other server's median
ratio() { # METRIC SERVER BETTER
    local m=$1 s=$2 better=$3 o v best=""
    v=$(get "$m" "$s" 5)
    for o in "${SERVERS[@]}"; do
        [ "$o" = "$s" ] && continue
        local ov
        ov=$(get "$m" "$o" 5)
        [ "$ov" = NA ] && continue
        if [ -z "$best" ]; then best=$ov; else
            best=$(awk -v a="$best" -v b="$ov" -v hb="$better" 'BEGIN { print (hb == "higher" ? (b > a ? b : a) : (b < a ? b : a)) }')
        fi
    done
    if [ "$v" = NA ] || [ -z "$best" ]; then echo NA; return; fi
    awk -v a="$v" -v b="$best" 'BEGIN { if (b == 0) print "NA"; else printf "%.3f\n", a / b }'
}

# PASS/FAIL of tessera against the target of a metric (n/a when it cannot be judged)
verdict() { # METRIC TARGETKIND
    local m=$1 kind=$2 t ref f o ov best=""
    t=$(get "$m" tessera 5)
    [ "$t" = NA ] && { echo n/a; return; }
    case "$kind" in
    none) echo "-" ;;
    abs:*) awk -v t="$t" -v l="${kind#abs:}" 'BEGIN { print (t <= l ? "PASS" : "FAIL") }' ;;
    nginx:*)
        ref=$(get "$m" nginx 5)
        [ "$ref" = NA ] && { echo n/a; return; }
        awk -v t="$t" -v r="$ref" -v f="${kind#nginx:}" 'BEGIN { print (t >= f * r ? "PASS" : "FAIL") }' ;;
    nginxlow:*)
        ref=$(get "$m" nginx 5)
        [ "$ref" = NA ] && { echo n/a; return; }
        awk -v t="$t" -v r="$ref" -v f="${kind#nginxlow:}" 'BEGIN { print (t <= f * r ? "PASS" : "FAIL") }' ;;
    best:*)
        for o in nginx h2o; do
            ov=$(get "$m" "$o" 5)
            [ "$ov" = NA ] && continue
            best=$(awk -v a="${best:-0}" -v b="$ov" 'BEGIN { print (b > a ? b : a) }')
        done
        [ -z "$best" ] && { echo n/a; return; }
        awk -v t="$t" -v r="$best" -v f="${kind#best:}" 'BEGIN { print (t >= f * r ? "PASS" : "FAIL") }' ;;
    esac
}

fmtnum() { # human-friendly number: integers above 100, 2 decimals below
    awk -v v="$1" 'BEGIN { if (v == "NA") print "n/a"; else if (v + 0 >= 100) printf "%d\n", v + 0.5; else printf "%.2f\n", v }'
}

# Rows of the report, for the metrics that were measured
TABLE=$RUN/table.tsv
: >"$TABLE"
for row in "${METRICS[@]}"; do
    IFS='|' read -r mid msc mtitle munit mbetter mkind mtext <<<"$row"
    case " ${SCEN[*]} " in *" $msc "*) ;; *) continue ;; esac
    cells=""
    for s in "${SERVERS[@]}"; do
        med=$(get "$mid" "$s" 5)
        cells+="$(fmtnum "$med")"
        r=$(ratio "$mid" "$s" "$mbetter")
        [ "$r" != NA ] && [ "${#SERVERS[@]}" -gt 1 ] && cells+=" (x$(awk -v r="$r" 'BEGIN { printf "%.2f", r }'))"
        cells+=';'
    done
    extra=""
    case "$mid" in
    full | res13 | res12)
        for s in "${SERVERS[@]}"; do extra+="$s $(get "$mid" "$s" 6), "; done
        extra="reuse ratio (client side): ${extra%, }" ;;
    esac
    case "$mid" in
    full | newconn)
        # what tessera itself counted over the measured runs (nginx and h2o expose no such count)
        hsf=$(awk -F'\t' -v m="$mid" '$1 == m && $2 == "tessera" { n = split($5, p, " "); for (i = 1; i <= n; i++) {
                if (p[i] ~ /^hs_full=/) { f += substr(p[i], 9); c = 1 } if (p[i] ~ /^hs_resumed=/) r += substr(p[i], 12) } }
              END { if (c) printf "%d full, %d resumed", f, r }' "$RAW")
        [ -n "$hsf" ] && extra+="${extra:+; }tessera /status handshakes during the measured runs: $hsf" ;;
    esac
    errsum=0
    for s in "${SERVERS[@]}"; do
        e=$(get "$mid" "$s" 7)
        [ "$e" != NA ] && errsum=$((errsum + e))
    done
    [ "$errsum" -gt 0 ] && extra+="${extra:+; }$errsum client-side errors (see logs)"
    for s in "${SERVERS[@]}"; do
        awk -F'\t' -v m="$mid" -v s="$s" '$1 == m && $2 == s && $5 ~ /no_h2=1/ { f = 1 } END { exit !f }' "$RAW" &&
            extra+="${extra:+; }$s: n/a (no HTTP/2 yet)"
    done
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$mid" "$mtitle" "$munit" "${cells%;}" "$mtext" "$(verdict "$mid" "$mkind")" "$extra" >>"$TABLE"
done

# --- table on stdout
print_table() {
    local hdr="scenario|unit" s
    for s in "${SERVERS[@]}"; do hdr+="|$s"; done
    hdr+="|target (tessera)|result"
    {
        echo "$hdr"
        while IFS=$'\t' read -r mid title unit cells ttext res extra; do
            echo "$title|$unit|${cells//;/|}|$ttext|$res"
        done <"$TABLE"
    } | awk -F'|' '
        { for (i = 1; i <= NF; i++) { c[NR, i] = $i; if (length($i) > w[i]) w[i] = length($i) } nf = NF; nr = NR }
        END { for (r = 1; r <= nr; r++) { line = ""
                for (i = 1; i <= nf; i++) line = line sprintf(i == 1 ? "%-" w[i] "s" : "  %-" w[i] "s", c[r, i])
                print line
                if (r == 1) { line = ""; for (i = 1; i <= nf; i++) { d = sprintf("%" w[i] "s", ""); gsub(/ /, "-", d); line = line (i == 1 ? "" : "  ") d } print line } } }'
    while IFS=$'\t' read -r mid title unit cells ttext res extra; do
        [ -n "$extra" ] && echo "  ${title%% (*}: $extra"
    done <"$TABLE"
    echo "(x) = median / median of the best other server (lower is better for ms, µs and KiB/conn)"
    [ -n "$FOREIGN_TEXT" ] && echo "$FOREIGN_TEXT"
    [ "${F_HI:-0}" -gt 0 ] && echo "warning: other work ran on this machine during the run; treat these figures with care"
    return 0
}
echo
print_table

# --- machine and versions
jesc() { printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g' | tr -d '\n'; }
CPU=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
CORES=$(nproc)
KERNEL=$(uname -r)
OS=$(. /etc/os-release 2>/dev/null && echo "${PRETTY_NAME:-}")
V_OPENSSL=$(openssl version)
V_NGINX=$(nginx -v 2>&1 | sed 's/^nginx version: //')
V_H2O=$(h2o --version 2>/dev/null | head -n 1)
V_WRK=$(wrk -v 2>&1 | head -n 1 | awk '{ print $1, $2 }')
MEM=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)

# --- JSON
JSON=$RESULTS/latest.json
{
    printf '{\n  "date": "%s",\n  "duration_s": %s,\n  "repetitions": %s,\n  "elapsed_s": %s,\n' "$DATE" "$DUR" "$REPS" "$ELAPSED"
    printf '  "machine": {"cpu": "%s", "cores": %s, "memory": "%s", "kernel": "%s", "os": "%s", "loadavg_before": "%s", "loadavg_after": "%s"},\n' \
        "$(jesc "$CPU")" "$CORES" "$(jesc "$MEM")" "$(jesc "$KERNEL")" "$(jesc "$OS")" "$(jesc "${LOAD0:-}")" "$(jesc "${LOAD1:-}")"
    printf '  "versions": {"openssl": "%s", "nginx": "%s", "h2o": "%s", "wrk": "%s", "tessera": "%s", "tessera_commit": "%s"},\n' \
        "$(jesc "$V_OPENSSL")" "$(jesc "$V_NGINX")" "$(jesc "$V_H2O")" "$(jesc "$V_WRK")" "$(jesc "$V_TESSERA")" "$(jesc "$COMMIT")"
    [ "$F_N" -gt 0 ] && printf '  "foreign_cpu": {"median": %s, "max": %s, "above_0_25": %s, "measurements": %s},\n' "$F_MED" "$F_MAX" "$F_HI" "$F_N"
    printf '  "tls": {'
    first=1
    for s in "${SERVERS[@]}"; do
        [ $first = 1 ] || printf ', '
        first=0
        printf '"%s": {"tls13": "%s", "tls12": "%s"}' "$s" "$(jesc "${TLS13[$s]% verify=0}")" "$(jesc "${TLS12[$s]% verify=0}")"
    done
    printf '},\n  "scenarios": [\n'
    firstm=1
    while IFS=$'\t' read -r mid title unit cells ttext res extra; do
        better=higher
        for row in "${METRICS[@]}"; do
            IFS='|' read -r a _ _ _ b _ _ <<<"$row"
            [ "$a" = "$mid" ] && better=$b
        done
        [ $firstm = 1 ] || printf ',\n'
        firstm=0
        printf '    {"id": "%s", "title": "%s", "unit": "%s", "better": "%s", "target": "%s", "result": "%s", "servers": {' \
            "$mid" "$(jesc "$title")" "$unit" "$better" "$(jesc "$ttext")" "$res"
        first=1
        for s in "${SERVERS[@]}"; do
            [ $first = 1 ] || printf ', '
            first=0
            vals=$(get "$mid" "$s" 4)
            med=$(get "$mid" "$s" 5)
            r=$(ratio "$mid" "$s" "$better")
            rm=$(get "$mid" "$s" 6)
            er=$(get "$mid" "$s" 7)
            [ "$vals" = NA ] && vals=""
            [ "$med" = NA ] && med=null
            [ "$r" = NA ] && r=null
            [ "$er" = NA ] && er=null
            printf '"%s": {"values": [%s], "median": %s, "ratio_to_best_peer": %s, "client_errors": %s' "$s" "$vals" "$med" "$r" "$er"
            for k in srv_cpu cli_cpu other_cpu; do
                v=$(extra_median "$mid" "$s" "$k")
                [ "$v" != NA ] && printf ', "%s_median": %s' "$k" "$v"
            done
            [ "$rm" != NA ] && printf ', "reuse_ratio_median": %s' "$rm"
            if [ "$mid" = idlemem ] || [ "$mid" = h2idlemem ]; then
                printf ', "runs": ['
                awk -F'\t' -v s="$s" -v m="$mid" '$1 == m && $2 == s { n = split($5, p, " "); o = ""
                    for (i = 1; i <= n; i++) { split(p[i], kv, "="); v = kv[2]; if (v !~ /^[0-9.]+$/) v = "null"
                        o = o (o == "" ? "" : ", ") "\"" kv[1] "\": " v }
                    printf "%s{%s}", (c++ ? ", " : ""), o }' "$RAW"
                printf ']'
            fi
            printf '}'
        done
        printf '}}'
    done <"$TABLE"
    printf '\n  ]\n}\n'
} >"$JSON"
if command -v jq >/dev/null && ! jq empty "$JSON" 2>/dev/null; then note "warning: $JSON is not valid JSON"; fi

# --- chart: every scenario normalised to its best server (1 = best; latency and memory inverted)
CHARTDAT=$RUN/chart.dat
{
    printf 'scenario'
    for s in "${SERVERS[@]}"; do printf '\t%s' "$s"; done
    printf '\n'
    while IFS=$'\t' read -r mid title unit cells ttext res extra; do
        [ "$mid" = lat50 ] && continue
        case "$mid" in *_cpu) continue ;; esac
        better=higher
        case "$mid" in lat99 | idlemem | h2idlemem | h2fair50 | h2fair99) better=lower ;; esac
        label=$(case "$mid" in
            ka1k) echo "keep-alive\\n1 KiB" ;; ka100k) echo "keep-alive\\n100 KiB" ;;
            ka10m) echo "10 MiB\\nfiles" ;; full) echo "full\\nhandshakes" ;; newconn) echo "new conn.\\n(resumption)" ;;
            res13) echo "resumed\\nTLS 1.3" ;; res12) echo "resumed\\nTLS 1.2" ;;
            lat99) echo "p99 latency\\n(inverted)" ;; idlemem) echo "idle memory\\n(inverted)" ;;
            h2ka1k) echo "HTTP/2\\n1 KiB" ;; h2ka100k) echo "HTTP/2\\n100 KiB" ;;
            h2fair50) echo "HTTP/2 fair\\np50 (inv.)" ;; h2fair99) echo "HTTP/2 fair\\np99 (inv.)" ;;
            h2idlemem) echo "HTTP/2 idle\\nmem. (inv.)" ;; esac)
        line="\"$label\""
        vals=()
        for s in "${SERVERS[@]}"; do vals+=("$(get "$mid" "$s" 5)"); done
        line+=$(printf '%s\n' "${vals[@]}" | awk -v b="$better" '
            { v[NR] = $1; if ($1 != "NA" && $1 > 0) { if (b == "higher") { if ($1 > best) best = $1 } else if (best == "" || $1 < best) best = $1 } }
            END { for (i = 1; i <= NR; i++) { if (v[i] == "NA" || v[i] <= 0 || best == "") o = "0"
                      else o = sprintf("%.3f", b == "higher" ? v[i] / best : best / v[i])
                      printf "\t%s", o } }')
        echo "$line"
    done <"$TABLE"
} >"$CHARTDAT"
CHART=$RESULTS/chart.png
nrows=$(($(wc -l <"$CHARTDAT") - 1))
if [ "$nrows" -ge 1 ]; then
    plotcmd="" labels=""
    ns=${#SERVERS[@]}
    for ((i = 0; i < ns; i++)); do
        col=$((i + 2))
        off=$(awk -v i="$i" -v n="$ns" 'BEGIN { printf "%.4f", (i - (n - 1) / 2) / (n + 1) }')
        plotcmd+="'$CHARTDAT' using $col:xtic(1) title columnheader($col), "
        labels+="'$CHARTDAT' every ::1 using (\$0 + $off):$col:(sprintf('%.2f', \$$col)) with labels font ',8' offset 0,0.6 notitle, "
    done
    gnuplot >"$LOGS/gnuplot.txt" 2>&1 <<EOF || note "warning: gnuplot failed (see $LOGS/gnuplot.txt)"
set terminal pngcairo size 1450,560 font 'DejaVu Sans,10'
set output '$CHART'
set datafile separator '\t'
set title "tessera vs nginx vs h2o — each scenario normalised to its best server (1.00 = best; higher is better)\n$(jesc "$CPU"), $CORES cores, ${REPS}x${DUR}s medians, $DATE"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set yrange [0:1.35]
set bmargin 5
set ytics 0.25
set grid ytics
set key top right horizontal
set xtics nomirror
set ylabel 'relative to best server'
plot ${plotcmd}${labels%, }
EOF
fi

# --- BENCHMARKS.md and BENCHMARKS.png
if [ "$UPDATE_DOCS" = 1 ]; then
    [ -f "$CHART" ] && cp "$CHART" "$ROOT/BENCHMARKS.png"
    MD=$ROOT/BENCHMARKS.md
    {
        echo "# Benchmarks"
        echo
        echo "tessera against nginx and h2o serving the same files with the same certificate, measured"
        echo "by \`make bench\` (bench/run.sh). This file and BENCHMARKS.png are regenerated by every run;"
        echo "raw figures are in \`bench/results/latest.json\` (not committed)."
        echo
        echo "**Read the ratios, not the absolute numbers.** The load generator (wrk, resume-load,"
        echo "tlsprobe) runs on the same ${CORES} cores as the server under test, over loopback, so every"
        echo "figure is for this shared machine only; ratios come from the same run, servers interleaved."
        echo
        echo "![normalised results](BENCHMARKS.png)"
        echo
        echo "## Latest run"
        echo
        echo "- date: $DATE, ${REPS} repetitions of ${DUR} s per server and scenario (medians shown), measurements took ${ELAPSED} s"
        echo "- machine: $CPU, $CORES cores, $MEM, Linux $KERNEL, $OS; load average ${LOAD0:-?} before the run, ${LOAD1:-?} after"
        echo "- the machine is shared: other people's builds and tests ran beside the benchmark (busiest processes before the run: ${OTHERS0:-none above 5%}; after: ${OTHERS1:-none above 5%}); the foreign CPU figure below says how much they took during the measurements"
        echo "- versions: $V_TESSERA (commit $COMMIT); $V_NGINX; $V_H2O; $V_OPENSSL; $V_WRK"
        for s in "${SERVERS[@]}"; do echo "- $s negotiated: ${TLS13[$s]% verify=0}; ${TLS12[$s]% verify=0}"; done
        echo
        hdr="| scenario | unit |"
        sep="|---|---|"
        for s in "${SERVERS[@]}"; do hdr+=" $s |"; sep+="---:|"; done
        echo "$hdr target (tessera) | result |"
        echo "$sep---|---|"
        while IFS=$'\t' read -r mid title unit cells ttext res extra; do
            echo "| $title | $unit | ${cells//;/ | } | $ttext | **$res** |"
        done <"$TABLE"
        echo
        echo "(x) is the server's median divided by the best other server's median; for ms, µs (CPU"
        echo "time) and KiB/conn lower is better. Targets are reported, never enforced."
        while IFS=$'\t' read -r mid title unit cells ttext res extra; do
            [ -n "$extra" ] && echo "- ${title%% (*}: $extra"
        done <"$TABLE"
        [ -n "$FOREIGN_TEXT" ] && echo "- $FOREIGN_TEXT"
        if [ -s "$RUN/incidents.txt" ]; then
            echo "- incidents: $(tr '\n' ';' <"$RUN/incidents.txt")"
        fi
        # deterministic figures kept beside the timed ones: bench/callgrind.sh writes them
        if [ -f "$ROOT/bench/callgrind.md" ]; then
            echo
            cat "$ROOT/bench/callgrind.md"
        fi
        cat <<'EOF'

## How it is measured

- One throwaway CA and an ECDSA P-256 server certificate (SAN localhost, 127.0.0.1), a site with
  a 1 KiB HTML page, a 100 KiB and a 10 MiB file; all generated under `bench/results/run/`.
- Every server: 2 workers (tessera `workers: 2`, nginx `worker_processes 2`, h2o
  `num-threads: 2`), access log off, keep-alive on (120 s, 10,000 requests), TLS 1.2 and 1.3,
  session cache and tickets on (nginx `ssl_session_cache shared` + `ssl_session_tickets on`,
  h2o `ssl-session-resumption: mode: all`, tessera's defaults), private key in process (h2o
  `neverbleed: OFF`; its default moves every signature to a helper process).
- The clients offer only TLS_AES_128_GCM_SHA256 (TLS 1.3) and ECDHE-ECDSA-AES128-GCM-SHA256
  (TLS 1.2), so all three servers negotiate the same suite with X25519 (h2o 2.2.5 runs TLS 1.3 in
  picotls, whose suite order cannot be configured).
- Each scenario has a short warm-up per server, then the servers take turns, in a rotating order,
  for each repetition; the median is reported. The defaults (4 s runs, 1 s warm-up, 3
  repetitions) keep the whole run near 15 minutes on this machine; `BENCH_DURATION=10
  BENCH_WARMUP=2` gives steadier figures in about twice the time.
- 1–3, 8: `wrk` with HTTP/1.1 keep-alive (8: its `--latency` percentiles).
- 4: a full TLS 1.3 handshake per connection: `build/resume-load --no-resume --tls13 -c64`
  (bench/resume-load.c) connects, handshakes without offering a session, GETs the 1 KiB page
  with `Connection: close`, closes and starts over. The client's reuse ratio (0) shows no
  handshake was resumed, and for tessera so do the `tls.handshakes.{full, resumed}` counters of
  its `/status`, read before and after each run (nginx and h2o have no such counter).
- 5: `wrk -H 'Connection: close'`: a new connection per request, but wrk's OpenSSL client
  offers the TLS 1.3 ticket of its previous connection, so nearly all of these handshakes are
  resumed (tessera's `/status` shows how many); this row is not a full-handshake figure.
- 6, 7: `build/resume-load` offering each connection's previous session; connections per second
  and the reuse ratio.
- 9: a freshly started server, one request, then `build/tlsprobe hold` opens the idle HTTP/1.1
  TLS connections, and (RSS after − RSS before) / connections is summed over all the server's
  processes.
- Server CPU per request (1b, 4b, 10b, 11b): utime + stime of all the server's processes
  (`/proc/PID/stat`) over the measurement, divided by the requests (connections for 4b) the
  client completed; the tick is 10 ms, so short runs give coarse figures.
- 13: as 9, with `tests/tools/h2end.py hold`: 1,000 HTTP/2 connections, each with one request
  answered, then held idle (h2o's `http2-idle-timeout` raised to 120 s so it keeps them).
- 10, 11: `h2load -t2 -c32 -m10` (1 KiB) and `-m4` (100 KiB) for the run's duration, HTTP/2
  over TLS with the same suite; 12: `bench/h2fair.py` (python3-h2) keeps one connection with a
  10 MiB download always in flight and asks for the 1 KiB page on another stream of the same
  connection, one request after another: the 1 KiB latency shows whether the server interleaves
  streams fairly. nginx listens with `ssl http2`, h2o speaks HTTP/2 over TLS by default; a server
  that does not select h2 in ALPN is reported n/a.
- Around every measurement the CPU time of the server's processes, of the load generator and of
  the whole machine is read; the rest ("foreign CPU") shows whether other work disturbed the run.

## How to run

    make bench                                   # installs wrk, nginx, h2o, gnuplot; about 15 min
    BENCH_DURATION=2 BENCH_REPS=1 make bench     # a quick look
    BENCH_SCENARIOS=ka1k,res13 make bench        # some scenarios (names or numbers 1-13)
    BENCH_UPDATE_DOCS=0 make bench               # leave BENCHMARKS.md/.png alone

`bench/run.sh --help` lists the scenarios and every variable (BENCH_DURATION, BENCH_REPS,
BENCH_SCENARIOS, BENCH_SERVERS, BENCH_WARMUP, BENCH_IDLE_CONNS, BENCH_RESUME_CONC).
`build/resume-load --help` describes the resumption load client, useful on its own.
EOF
    } >"$MD"
    note "wrote $MD and $ROOT/BENCHMARKS.png"
fi
note "results: $JSON, $CHART; raw output in $LOGS"
for s in "${SERVERS[@]}"; do
    f=$RUN/$s/error.log
    [ -s "$f" ] && note "$s error log: $(wc -l <"$f") lines in $f"
done
exit 0

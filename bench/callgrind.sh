#!/usr/bin/env bash
# Instructions per request by callgrind: deterministic where bench/run.sh's timings depend on
# whatever else the machine runs. Each server runs with one worker under valgrind; h2load
# warms it up, the counters are zeroed, then N requests are made and the instructions the
# whole server executed meanwhile (handshakes of the 4 connections included) are divided by N.
set -u -o pipefail

usage() {
    cat <<'EOF'
usage: bench/callgrind.sh [BUILD_DIR]        (BUILD_DIR defaults to build)

Environment:
  CG_REQUESTS=N     requests per 1 KiB scenario (default 20000; 100 KiB: N/20)
  CG_SERVERS=L      servers to measure (default "tessera h2o")
  CG_SCENARIOS=L    any of h2-1k h2-100k h1-1k (default all three):
                      h2-1k    h2load -c4 -m10, HTTP/2, the 1 KiB page
                      h2-100k  h2load -c4 -m4, HTTP/2, the 100 KiB file
                      h1-1k    h2load --h1 -c4, HTTP/1.1 keep-alive, the 1 KiB page
Prints a Markdown table of instructions per request; the callgrind files stay in
bench/results/callgrind/ for callgrind_annotate.
EOF
}
case "${1:-}" in -h | --help) usage; exit 0 ;; esac

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-build}
case "$BUILD" in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
N=${CG_REQUESTS:-20000}
read -r -a SERVERS <<<"${CG_SERVERS:-tessera h2o}"
read -r -a SCENS <<<"${CG_SCENARIOS:-h2-1k h2-100k h1-1k}"
DIR=$ROOT/bench/results/callgrind

die() { echo "callgrind: $*" >&2; exit 1; }
case "$N" in '' | *[!0-9]*) die "CG_REQUESTS must be a number" ;; esac
[ "$N" -ge 100 ] && [ "$N" -le 1000000 ] || die "CG_REQUESTS must be 100..1000000"
for t in valgrind callgrind_control h2load openssl ss; do
    command -v "$t" >/dev/null || die "$t is not installed"
done
for s in "${SERVERS[@]}"; do
    case "$s" in
    tessera) [ -x "$BUILD/tessera" ] || die "no $BUILD/tessera (make all)" ;;
    h2o) command -v h2o >/dev/null || die "h2o is not installed" ;;
    *) die "unknown server '$s'" ;;
    esac
done
for sc in "${SCENS[@]}"; do
    case "$sc" in h2-1k | h2-100k | h1-1k) ;; *) die "unknown scenario '$sc'" ;; esac
done

rm -rf "$DIR" && mkdir -p "$DIR/www" || die "cannot create $DIR"
head -c 1024 /dev/urandom | base64 -w 64 | head -c 1024 >"$DIR/www/1k.html"
head -c 102400 /dev/urandom >"$DIR/www/100k.bin"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
    -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout "$DIR/key.pem" -out "$DIR/cert.pem" \
    >/dev/null 2>&1 || die "certificate generation failed"

pick_port() {
    local p i
    for ((i = 0; i < 200; i++)); do
        p=$((20000 + RANDOM % 9000))
        ss -Htan "( sport = :$p or dport = :$p )" 2>/dev/null | grep -q . && continue
        echo "$p"
        return 0
    done
    return 1
}

server_cmd() { # SERVER PORT: the command line, its configuration written
    local port=$2
    case "$1" in
    tessera)
        cat >"$DIR/tessera.json" <<EOF
{
  "listen": "127.0.0.1:$port",
  "root": "$DIR/www",
  "workers": 1,
  "tls": {"certificate": "$DIR/cert.pem", "key": "$DIR/key.pem"},
  "log": {"access": "off", "error": "$DIR/tessera-error.log", "level": "warn"},
  "limits": {"max_requests_per_connection": 0},
  "timeouts": {"keepalive_s": 120, "request_header_s": 120}
}
EOF
        echo "$BUILD/tessera --config $DIR/tessera.json"
        ;;
    h2o)
        {
            echo "num-threads: 1"
            [ "$(id -u)" -eq 0 ] && echo "user: root"
            cat <<EOF
pid-file: $DIR/h2o.pid
error-log: $DIR/h2o-error.log
listen:
  host: 127.0.0.1
  port: $port
  ssl:
    certificate-file: $DIR/cert.pem
    key-file: $DIR/key.pem
    neverbleed: OFF
    ocsp-update-interval: 0
hosts:
  default:
    paths:
      /:
        file.dir: $DIR/www
EOF
        } >"$DIR/h2o.conf"
        echo "h2o -c $DIR/h2o.conf"
        ;;
    esac
}

declare -A IR
for s in "${SERVERS[@]}"; do
    port=$(pick_port) || die "no free port"
    read -r -a cmd <<<"$(server_cmd "$s" "$port")"
    valgrind --tool=callgrind --callgrind-out-file="$DIR/$s.cg" "${cmd[@]}" >"$DIR/$s-valgrind.log" 2>&1 &
    vp=$!
    url=https://127.0.0.1:$port
    ready=0
    for ((i = 0; i < 150; i++)); do
        sleep 0.2
        h2load -n 4 -c 1 "$url/1k.html" 2>/dev/null | grep -q "4 succeeded" && { ready=1; break; }
        kill -0 "$vp" 2>/dev/null || break
    done
    [ "$ready" = 1 ] || { kill "$vp" 2>/dev/null; die "$s did not start (see $DIR/$s-valgrind.log)"; }
    for sc in "${SCENS[@]}"; do
        n=$N
        case "$sc" in
        h2-1k) args=(-c 4 -m 10 "$url/1k.html") ;;
        h2-100k)
            n=$((N / 20))
            args=(-c 4 -m 4 "$url/100k.bin")
            ;;
        h1-1k) args=(--h1 -c 4 "$url/1k.html") ;;
        esac
        h2load -n 400 "${args[@]}" >/dev/null 2>&1
        callgrind_control -z "$vp" >/dev/null 2>&1
        ok=$(h2load -n "$n" "${args[@]}" 2>&1 | awk '/^requests:/ {print $8}')
        callgrind_control -d "$sc" "$vp" >/dev/null 2>&1
        sleep 0.5
        f=$(ls -t "$DIR/$s.cg".* 2>/dev/null | head -n 1)
        total=$(awk '/^summary:/ {print $2}' "$f" 2>/dev/null)
        if [ "$ok" = "$n" ] && [ -n "$total" ]; then
            IR[$s.$sc]=$((total / n))
        else
            IR[$s.$sc]="n/a"
            echo "callgrind: $s $sc: $ok of $n requests succeeded" >&2
        fi
    done
    kill "$vp" 2>/dev/null
    wait "$vp" 2>/dev/null
done

hdr="| scenario |" sep="|---|"
for s in "${SERVERS[@]}"; do hdr+=" $s |" sep+="---:|"; done
{
    echo "$hdr"
    echo "$sep"
    for sc in "${SCENS[@]}"; do
        row="| $sc |"
        for s in "${SERVERS[@]}"; do row+=" ${IR[$s.$sc]} |"; done
        echo "$row"
    done
} | tee "$DIR/table.md"

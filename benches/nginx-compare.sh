#!/usr/bin/env bash
# iofd against nginx serving the same bytes, on the same machine, loaded by wrk with the same
# connections. For each row it prints raw rates and requests per server CPU-second (the load
# generator shares the cores, so raw rates alone would flatter whichever server leaves wrk
# more CPU), and the ratio iofd/nginx.
#
# Runs from a fresh clone on Debian: installs nginx-light, wrk and curl with apt when missing
# (as root), builds iofd in release mode, generates two catalogs (a small one whose light.xml
# is about 1 MB, a large one whose full.xml is 100 MB or more), serves each with iofd, copies
# the files iofd serves into a directory for nginx (with .gz siblings for gzip_static), and
# runs the rows. Everything listens on 127.0.0.1 and stops at the end.
#
# Settings (environment): PRODUCTS (large catalog, default 30000: full.xml about 110 MB),
# SMALL_PRODUCTS (default 1400: light.xml about 1 MB), DURATION seconds per row (default 10),
# CONNS connections (default 16; FULL_CONNS for the full.xml row, default 4), THREADS wrk
# threads (default 1), WORKERS server threads (default 1: nginx `worker_processes` and iofd
# `--workers` alike, so on a 2-core machine each server gets one core and wrk the other), WORK
# directory (default: a
# temporary one, removed at the end unless KEEP=1), IOFD (an iofd binary to compare instead
# of building this checkout).
set -euo pipefail

cd "$(dirname "$0")/.."
PRODUCTS=${PRODUCTS:-30000}
SMALL_PRODUCTS=${SMALL_PRODUCTS:-1400}
DURATION=${DURATION:-10}
CONNS=${CONNS:-16}
FULL_CONNS=${FULL_CONNS:-4}
THREADS=${THREADS:-1}
WORKERS=${WORKERS:-1}
KEEP=${KEEP:-0}
IOFD=${IOFD:-}
WORK=${WORK:-$(mktemp -d -t iofd-nginx-XXXXXX)}
SMALL_PORT=18580
BIG_PORT=18582
NGINX_PORT=18590
TOKEN=bench-token-0001
TOKEN_GZ=bench-token-0002
CLK_TCK=$(getconf CLK_TCK)

log() { printf '>> %s\n' "$*" >&2; }

install_missing() {
    local missing=()
    command -v nginx >/dev/null || missing+=(nginx-light)
    command -v wrk >/dev/null || missing+=(wrk)
    command -v curl >/dev/null || missing+=(curl)
    if ((${#missing[@]})); then
        log "installing ${missing[*]}"
        local sudo=""
        [ "$(id -u)" -eq 0 ] || sudo=sudo
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
    # Debian starts nginx on port 80 after installing it where it can; this script runs its
    # own instance and leaves that one alone.
    nginx -V 2>&1 | grep -q http_gzip_static_module || {
        echo "nginx lacks gzip_static" >&2
        exit 1
    }
}

PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true
    wait 2>/dev/null || true
    if [ "$KEEP" != 1 ]; then rm -rf "$WORK"; else log "kept $WORK"; fi
}
trap cleanup EXIT

# CPU seconds (user + system) used so far by the given processes and their threads.
cpu_ticks() {
    local total=0 pid
    local -a f
    for pid in "$@"; do
        # /proc/PID/stat after "PID (comm) ": field 3 (state) first, so utime (field 14) and
        # stime (field 15) are at indexes 11 and 12. Threads are included.
        read -ra f <<<"$(sed -e 's/^.*) //' "/proc/$pid/stat")"
        total=$((total + f[11] + f[12]))
    done
    echo "$total"
}

nginx_pids() {
    local master
    master=$(cat "$WORK/nginx.pid")
    echo "$master" $(pgrep -P "$master")
}

start_iofd() { # name catalog-size port
    local name=$1 products=$2 port=$3
    log "generating $name catalog: $products products"
    "$IOFD" generate --products "$products" --seed 1 --out "$WORK/$name-src" >/dev/null
    IOFD_LOG=warn "$IOFD" import --data "$WORK/$name-data" "$WORK/$name-src/catalog.jsonl" >/dev/null
    IOFD_LOG=warn "$IOFD" serve --data "$WORK/$name-data" --partners "$WORK/partners.toml" \
        --listen "127.0.0.1:$port" --admin-listen "127.0.0.1:$((port + 1))" \
        --rate-limit 0 --workers "$WORKERS" >"$WORK/$name.log" 2>&1 &
    PIDS+=($!)
    eval "${name}_PID=$!"
    log "waiting for iofd ($name) to render its files"
    for _ in $(seq 1 1200); do
        curl -sf "http://127.0.0.1:$((port + 1))/readyz" >/dev/null && return 0
        sleep 0.5
    done
    echo "iofd ($name) did not become ready; see $WORK/$name.log" >&2
    exit 1
}

export_files() { # name port
    local name=$1 port=$2 dir="$WORK/www/$1"
    local plain="http://127.0.0.1:$port/feeds/bench/$TOKEN/1"
    local gz="http://127.0.0.1:$port/feeds/benchgz/$TOKEN_GZ/1"
    mkdir -p "$dir"
    for f in gateway.xml full.xml light.xml; do
        curl -sf -o "$dir/$f" "$plain/$f"
    done
    for f in full.xml light.xml; do
        # The same compressed bytes iofd serves to gzip partners, when they decompress to
        # the plain file (they do: same settings but the file type).
        curl -sf -o "$dir/$f.gz" "$gz/$f.gz"
        if ! gzip -dc "$dir/$f.gz" | cmp -s - "$dir/$f"; then
            gzip -6 -n -c "$dir/$f" >"$dir/$f.gz"
        fi
    done
}

start_nginx() {
    mkdir -p "$WORK/nginx-tmp"
    cat >"$WORK/nginx.conf" <<EOF
worker_processes $WORKERS;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    gzip_static on;
    gzip_vary on;
    etag on;
    keepalive_requests 100000000;
    keepalive_timeout 75s;
    client_body_temp_path $WORK/nginx-tmp;
    types { application/xml xml; application/gzip gz; }
    default_type application/octet-stream;
    server {
        listen 127.0.0.1:$NGINX_PORT;
        root $WORK/www;
    }
}
EOF
    nginx -c "$WORK/nginx.conf" -p "$WORK" -g 'daemon on;'
    for _ in $(seq 1 50); do
        [ -s "$WORK/nginx.pid" ] && curl -sf "http://127.0.0.1:$NGINX_PORT/small/gateway.xml" -o /dev/null && return 0
        sleep 0.1
    done
    echo "nginx did not start; see $WORK/nginx-error.log" >&2
    exit 1
}

etag_of() { curl -sfI "$1" | tr -d '\r' | awk 'tolower($1)=="etag:" {print $2}'; }

# Check what a request returns before loading it: status and (for 200/206) body MD5.
probe() { # url expected-status header...
    local url=$1 want=$2
    shift 2
    local args=()
    for h in "$@"; do args+=(-H "$h"); done
    local out status
    out=$(curl -s -o "$WORK/probe.body" -w '%{http_code}' "${args[@]}" "$url")
    status=$out
    if [ "$status" != "$want" ]; then
        echo "unexpected status $status (wanted $want) for $url $*" >&2
        exit 1
    fi
    md5sum <"$WORK/probe.body" | cut -c1-32
}

# Wait until every server is idle (at most 2% of a core over a second, for up to five
# minutes): a server that has just become ready may still write gzip forms or scrub its
# store in the background. That CPU is not the cost of the requests measured next, and on
# a core wrk needs it slows the load and so every figure of the row.
wait_idle() {
    local before after
    for _ in $(seq 1 300); do
        before=$(cpu_ticks "$@")
        sleep 1
        after=$(cpu_ticks "$@")
        [ $((after - before)) -le $((CLK_TCK / 50)) ] && return 0
    done
    log "warning: still busy after five minutes; measuring anyway"
}

RESULTS=()
FAILED=0
run_wrk() { # label conns pids-fn url header...
    local label=$1 conns=$2 pidfn=$3 url=$4
    shift 4
    local args=()
    for h in "$@"; do args+=(-H "$h"); done
    local pids before after out requests seconds rate transfer cpu
    pids=$($pidfn)
    wait_idle "$small_PID" "$big_PID" $(nginx_pids)
    before=$(cpu_ticks $pids)
    out=$(wrk -t"$THREADS" -c"$conns" -d"${DURATION}s" --timeout 60s "${args[@]}" "$url")
    after=$(cpu_ticks $pids)
    requests=$(echo "$out" | awk '/requests in/ {print $1}')
    seconds=$(echo "$out" | awk '/requests in/ {gsub(/[s,]/, "", $4); print $4}')
    rate=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    transfer=$(echo "$out" | awk '/Transfer\/sec/ {print $2}')
    cpu=$(awk -v a="$after" -v b="$before" -v t="$CLK_TCK" 'BEGIN {printf "%.2f", (a - b) / t}')
    if echo "$out" | grep -q -E 'Socket errors|Non-2xx'; then
        # A rate of error answers measures nothing: the row is void and the run fails.
        echo "$out" | grep -E 'Socket errors|Non-2xx' | sed "s/^/   $label: /" >&2
        FAILED=1
    fi
    RESULTS+=("$label|$rate|$transfer|$requests|$cpu|$seconds")
    log "$label: $rate req/s, $transfer/s, server CPU ${cpu}s"
}

iofd_small_pids() { echo "$small_PID"; }
iofd_big_pids() { echo "$big_PID"; }

install_missing
if [ -z "$IOFD" ]; then
    log "building iofd (release)"
    cargo build --release --quiet
    IOFD=./target/release/iofd
fi
mkdir -p "$WORK"
# nginx's workers drop root privileges: they must be able to read the files.
chmod 755 "$WORK"
cat >"$WORK/partners.toml" <<EOF
[[partner]]
id = "bench"
token = "$TOKEN"
shops = [1]
languages = ["pol"]
currency = "PLN"

[[partner]]
id = "benchgz"
token = "$TOKEN_GZ"
shops = [1]
file_type = "xml.gz"
languages = ["pol"]
currency = "PLN"
EOF
start_iofd small "$SMALL_PRODUCTS" "$SMALL_PORT"
start_iofd big "$PRODUCTS" "$BIG_PORT"
export_files small "$SMALL_PORT"
export_files big "$BIG_PORT"
start_nginx

S="http://127.0.0.1:$SMALL_PORT/feeds/bench/$TOKEN/1"
SGZ="http://127.0.0.1:$SMALL_PORT/feeds/benchgz/$TOKEN_GZ/1"
B="http://127.0.0.1:$BIG_PORT/feeds/bench/$TOKEN/1"
N="http://127.0.0.1:$NGINX_PORT"
size() { stat -c %s "$WORK/www/$1"; }
FULL_SIZE=$(size big/full.xml)
log "sizes: gateway $(size small/gateway.xml) B, light $(size small/light.xml) B (gz $(size small/light.xml.gz) B), full $FULL_SIZE B"
[ "$FULL_SIZE" -ge 100000000 ] || log "warning: full.xml is under 100 MB; raise PRODUCTS"

# iofd negotiates gzip from Accept-Encoding when it can; otherwise the gzip variant is the
# .xml.gz file of a gzip partner (the same bytes nginx's gzip_static sends).
AE='Accept-Encoding: gzip'
if curl -sI -H "$AE" "$S/light.xml" | grep -qi '^content-encoding: *gzip'; then
    IOFD_GZ_URL="$S/light.xml"
else
    IOFD_GZ_URL="$SGZ/light.xml.gz"
fi
curl -sI -H "$AE" "$N/small/light.xml" | grep -qi '^content-encoding: *gzip' || {
    echo "nginx does not serve light.xml.gz for Accept-Encoding: gzip" >&2
    exit 1
}

IOFD_LIGHT_ETAG=$(etag_of "$S/light.xml")
NGINX_LIGHT_ETAG=$(etag_of "$N/small/light.xml")
RANGE='Range: bytes=1048576-1114111'

# Both servers must answer alike before they are compared.
[ "$(probe "$S/light.xml" 200)" = "$(probe "$N/small/light.xml" 200)" ] || {
    echo "iofd and nginx serve different light.xml bytes" >&2
    exit 1
}
[ "$(probe "$B/full.xml" 206 "$RANGE")" = "$(probe "$N/big/full.xml" 206 "$RANGE")" ] || {
    echo "iofd and nginx serve different full.xml ranges" >&2
    exit 1
}
probe "$S/light.xml" 304 "If-None-Match: $IOFD_LIGHT_ETAG" >/dev/null
probe "$N/small/light.xml" 304 "If-None-Match: $NGINX_LIGHT_ETAG" >/dev/null
probe "$IOFD_GZ_URL" 200 "$AE" >/dev/null

nginx_all() { nginx_pids; }
run_wrk "gateway   iofd " "$CONNS" iofd_small_pids "$S/gateway.xml"
run_wrk "gateway   nginx" "$CONNS" nginx_all "$N/small/gateway.xml"
run_wrk "304       iofd " "$CONNS" iofd_small_pids "$S/light.xml" "If-None-Match: $IOFD_LIGHT_ETAG"
run_wrk "304       nginx" "$CONNS" nginx_all "$N/small/light.xml" "If-None-Match: $NGINX_LIGHT_ETAG"
run_wrk "light 1MB iofd " "$CONNS" iofd_small_pids "$S/light.xml"
run_wrk "light 1MB nginx" "$CONNS" nginx_all "$N/small/light.xml"
run_wrk "light gz  iofd " "$CONNS" iofd_small_pids "$IOFD_GZ_URL" "$AE"
run_wrk "light gz  nginx" "$CONNS" nginx_all "$N/small/light.xml" "$AE"
run_wrk "full      iofd " "$FULL_CONNS" iofd_big_pids "$B/full.xml"
run_wrk "full      nginx" "$FULL_CONNS" nginx_all "$N/big/full.xml"
run_wrk "range 64K iofd " "$CONNS" iofd_big_pids "$B/full.xml" "$RANGE"
run_wrk "range 64K nginx" "$CONNS" nginx_all "$N/big/full.xml" "$RANGE"

echo
echo "iofd vs nginx: wrk -t$THREADS -c$CONNS (full.xml: -c$FULL_CONNS), ${DURATION}s per row, $(nproc) cores, $WORKERS server worker(s)"
echo "sizes: gateway $(size small/gateway.xml) B, light.xml $(size small/light.xml) B (gzip $(size small/light.xml.gz) B), full.xml $FULL_SIZE B"
printf '%-10s %12s %12s %10s %10s %14s %14s %8s %8s\n' row "iofd req/s" "nginx req/s" "iofd /s" "nginx /s" "iofd req/CPUs" "nginx req/CPUs" "raw x" "CPU x"
for ((i = 0; i < ${#RESULTS[@]}; i += 2)); do
    IFS='|' read -r label irate itransfer ireq icpu _ <<<"${RESULTS[i]}"
    IFS='|' read -r _ nrate ntransfer nreq ncpu _ <<<"${RESULTS[i + 1]}"
    awk -v l="${label% iofd }" -v ir="$irate" -v nr="$nrate" -v it="$itransfer" -v nt="$ntransfer" \
        -v iq="$ireq" -v nq="$nreq" -v ic="$icpu" -v nc="$ncpu" 'BEGIN {
        ipc = (ic > 0) ? iq / ic : 0; npc = (nc > 0) ? nq / nc : 0
        raw = (nr > 0) ? ir / nr : 0; per = (npc > 0) ? ipc / npc : 0
        printf "%-10s %12.0f %12.0f %10s %10s %14.0f %14.0f %8.2f %8.2f\n", l, ir, nr, it, nt, ipc, npc, raw, per }'
done
if [ "$FAILED" != 0 ]; then
    echo "some rows had error answers or socket errors (above): their figures are void" >&2
    exit 1
fi

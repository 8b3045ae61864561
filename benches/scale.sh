#!/usr/bin/env bash
# Scale bench: a synthetic catalog of N products taken from scratch to served, restarted cold,
# and downloaded by 200 clients at once, with the demo partners (demo mode: `iofd serve --data
# DIR` over an imported store). Prints one table (issue 14's):
#
#   import               wall time of `iofd import`, and its peak private (RssAnon) and
#                        file-backed (RssFile: mapped shards, page cache the kernel may
#                        reclaim) memory, sampled every 100 ms
#   serve until /readyz  from launching `iofd serve` to /readyz answering 200
#   first full.xml       one full.xml download, start to last byte
#   gzip forms           from launching `iofd serve` until full.xml has its gzip form (they
#                        follow readiness; the restart below is measured after them)
#   scratch -> served    the three above summed
#   cold restart         SIGTERM, page cache dropped when permitted (said in the table), then
#                        launch -> the first 200 gateway answer (polled by curl; the figure
#                        includes curl's own start, a few milliseconds)
#   200 downloads        peak anonymous (RssAnon) and private dirty memory of the server while
#                        200 full.xml downloads run at once, each held to RATE by its client
#   ack -> light ETag    an acknowledged stock update until light.xml's ETag changes (ROUNDS)
#   disk                 bytes per directory of the data directory, and per product
#
# Usage: benches/scale.sh N. Settings (environment): IOFD (a binary to measure instead of
# building this checkout in release mode), WORK (default: a temporary directory, removed at
# the end unless KEEP=1), CATALOG (an existing `iofd generate` catalog.jsonl of N products to
# reuse instead of generating one), DOWNLOADS (default 200), DL_SECONDS (default 20) and RATE
# (curl --limit-rate per download, default 1M), ROUNDS (default 5), PORT (default 18680; the
# admin listener is PORT+1), FORCE=1 to run although the free disk looks too small.
set -euo pipefail

cd "$(dirname "$0")/.."
N=${1:?usage: benches/scale.sh N}
IOFD=${IOFD:-}
KEEP=${KEEP:-0}
CATALOG=${CATALOG:-}
DOWNLOADS=${DOWNLOADS:-200}
DL_SECONDS=${DL_SECONDS:-20}
RATE=${RATE:-1M}
ROUNDS=${ROUNDS:-5}
PORT=${PORT:-18680}
ADMIN_PORT=$((PORT + 1))
FORCE=${FORCE:-0}
WORK=${WORK:-$(mktemp -d -t iofd-scale-XXXXXX)}
DATA="$WORK/data"
# The demo accounts (fixtures/demo/partners.toml) and demo mode's admin token.
FEED="http://127.0.0.1:$PORT/feeds/sklep-kowalski/demo-kowalski-4f9c2a7e1b/1"
ADMIN="http://127.0.0.1:$ADMIN_PORT"
ADMIN_TOKEN=demo-admin-token

log() { printf '>> %s\n' "$*" >&2; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
secs() { awk -v ms="$1" 'BEGIN {printf "%.2f s", ms / 1000}'; }
mib() { awk -v b="$1" 'BEGIN {printf "%.0f MB", b / 1048576}'; }
load() { cut -d' ' -f1-3 /proc/loadavg; }

SERVER_PID=
cleanup() {
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
    if [ "$KEEP" != 1 ]; then rm -rf "$WORK"; else log "kept $WORK"; fi
}
trap cleanup EXIT

for tool in curl; do
    command -v "$tool" >/dev/null || {
        echo "$tool is missing (Debian: apt-get install curl)" >&2
        exit 1
    }
done

# About 20 kB per product on disk at the sizes issue 14 measured (catalog, store, artifacts,
# change log); refuse early rather than fill a shared disk halfway through.
need=$((N * 20 * 1024))
free=$(($(df --output=avail -k "$(dirname "$WORK")" | tail -1) * 1024))
if [ "$free" -lt "$need" ] && [ "$FORCE" != 1 ]; then
    echo "about $(mib "$need") of disk needed under $WORK, $(mib "$free") free (FORCE=1 runs anyway)" >&2
    exit 1
fi

if [ -z "$IOFD" ]; then
    log "building iofd (release)"
    cargo build --release --quiet
    IOFD=./target/release/iofd
fi
mkdir -p "$WORK"
LOAD_START=$(load)

if [ -z "$CATALOG" ]; then
    log "generating $N products"
    "$IOFD" generate --products "$N" --seed 1 --out "$WORK/src" >/dev/null
    CATALOG="$WORK/src/catalog.jsonl"
fi
CATALOG_BYTES=$(stat -c %s "$CATALOG")

log "importing $(mib "$CATALOG_BYTES") of JSON Lines"
t=$(now_ms)
IOFD_LOG=warn "$IOFD" import --data "$DATA" "$CATALOG" >"$WORK/import.log" 2>&1 &
IMPORT_PID=$!
IMPORT_ANON_KB=0 IMPORT_FILE_KB=0
while kill -0 "$IMPORT_PID" 2>/dev/null; do
    read -r anon file < <(awk '/^RssAnon:/ {a=$2} /^RssFile:/ {f=$2} END {print a+0, f+0}' \
        "/proc/$IMPORT_PID/status" 2>/dev/null || echo 0 0)
    [ "$anon" -gt "$IMPORT_ANON_KB" ] && IMPORT_ANON_KB=$anon
    [ "$file" -gt "$IMPORT_FILE_KB" ] && IMPORT_FILE_KB=$file
    sleep 0.1
done
wait "$IMPORT_PID" || {
    cat "$WORK/import.log" >&2
    exit 1
}
IMPORT_MS=$(($(now_ms) - t))

start_server() { # log-file
    IOFD_LOG=warn "$IOFD" serve --data "$DATA" \
        --listen "127.0.0.1:$PORT" --admin-listen "127.0.0.1:$ADMIN_PORT" \
        --rate-limit 0 >>"$1" 2>&1 &
    SERVER_PID=$!
}

stop_server() {
    kill -TERM "$SERVER_PID"
    wait "$SERVER_PID" || true
    SERVER_PID=
}

# Polls URL until it answers 200 or the server exits; prints nothing, fails on timeout.
wait_200() { # url deadline-seconds
    local url=$1 deadline=$(($(now_ms) + $2 * 1000))
    while [ "$(now_ms)" -lt "$deadline" ]; do
        [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$url")" = 200 ] && return 0
        kill -0 "$SERVER_PID" 2>/dev/null || {
            echo "iofd exited; see $WORK/serve.log" >&2
            exit 1
        }
        sleep 0.01
    done
    echo "$url did not answer 200 within $2 s; see $WORK/serve.log" >&2
    exit 1
}

log "serving (demo partners) until /readyz"
SERVE_STARTED=$(now_ms)
start_server "$WORK/serve.log"
wait_200 "$ADMIN/readyz" 1800
READY_MS=$(($(now_ms) - SERVE_STARTED))

log "first full.xml"
t=$(now_ms)
FULL_BYTES=$(curl -sf -o /dev/null -w '%{size_download}' "$FEED/full.xml")
FULL_MS=$(($(now_ms) - t))

# Ack -> light.xml ETag change: a stock update of product 1 with a new quantity each round.
etag() { curl -sfI "$FEED/light.xml" | tr -d '\r' | awk 'tolower($1)=="etag:" {print $2}'; }
ACKS=()
for round in $(seq 1 "$ROUNDS"); do
    before=$(etag)
    body=$(printf '{"kind":"stock","product":1,"warehouse":1,"quantity":"%d"}' $((7000 + round)))
    answer=$(curl -s -w ' %{http_code}' -H "Authorization: Bearer $ADMIN_TOKEN" \
        --data-binary "$body" "$ADMIN/v1/updates")
    t=$(now_ms)
    [ "${answer##* }" = 200 ] || {
        echo "the update was not acknowledged: $answer" >&2
        exit 1
    }
    deadline=$((t + 30000))
    while [ "$(etag)" = "$before" ]; do
        [ "$(now_ms)" -lt "$deadline" ] || {
            echo "light.xml's ETag did not change within 30 s of an ack" >&2
            exit 1
        }
        sleep 0.005
    done
    ACKS+=($(($(now_ms) - t)))
done
ACK_MIN=$(printf '%s\n' "${ACKS[@]}" | sort -n | head -1)
ACK_MAX=$(printf '%s\n' "${ACKS[@]}" | sort -n | tail -1)

# The gzip forms follow readiness in the background; the restart is measured once they are
# all written (full.xml's is among the last), as a server that finished its work restarts.
log "waiting for the gzip forms"
while ! curl -sfI -H 'Accept-Encoding: gzip' "$FEED/full.xml" | grep -qi '^content-encoding: *gzip'; do
    kill -0 "$SERVER_PID" 2>/dev/null || {
        echo "iofd exited; see $WORK/serve.log" >&2
        exit 1
    }
    sleep 0.05
done
GZIP_MS=$(($(now_ms) - SERVE_STARTED))

log "cold restart"
stop_server
sync
if (echo 3 >/proc/sys/vm/drop_caches) 2>/dev/null; then
    DROPPED="page cache dropped"
else
    DROPPED="page cache NOT dropped (not permitted)"
fi
t=$(now_ms)
start_server "$WORK/serve.log"
wait_200 "$FEED/gateway.xml" 600
COLD_MS=$(($(now_ms) - t))
wait_200 "$ADMIN/readyz" 1800

log "$DOWNLOADS concurrent full.xml downloads for ${DL_SECONDS}s at $RATE each"
urls=()
for _ in $(seq 1 "$DOWNLOADS"); do urls+=(-o /dev/null "$FEED/full.xml"); done
curl -s -Z --parallel-immediate --parallel-max "$DOWNLOADS" --limit-rate "$RATE" --max-time "$DL_SECONDS" \
    -w '%{http_code}\n' "${urls[@]}" >"$WORK/downloads.codes" 2>/dev/null &
CURL_PID=$!
PEAK_ANON_KB=0 PEAK_DIRTY_KB=0 PEAK_CONNS=0
while kill -0 "$CURL_PID" 2>/dev/null; do
    anon=$(awk '/^RssAnon:/ {print $2}' "/proc/$SERVER_PID/status")
    dirty=$(awk '/^Private_Dirty:/ {print $2}' "/proc/$SERVER_PID/smaps_rollup")
    conns=$(ss -Htn state established "( sport = :$PORT )" | wc -l)
    [ "$anon" -gt "$PEAK_ANON_KB" ] && PEAK_ANON_KB=$anon
    [ "$dirty" -gt "$PEAK_DIRTY_KB" ] && PEAK_DIRTY_KB=$dirty
    [ "$conns" -gt "$PEAK_CONNS" ] && PEAK_CONNS=$conns
    sleep 0.5
done
wait "$CURL_PID" || true
OK_200=$(grep -c '^200$' "$WORK/downloads.codes" || true)
NO_ANSWER=$(grep -c '^000$' "$WORK/downloads.codes" || true)

du_b() { du -sb "$DATA/$1" 2>/dev/null | cut -f1; }
STORE_B=$(du_b store)
ARTIFACTS_B=$(du_b artifacts)
CHANGES_B=$(du_b changes)
TOTAL_B=$(du -sb "$DATA" | cut -f1)
LOAD_END=$(load)

printf '\niofd scale bench: N = %s products (%s of JSON Lines), %s cores, %s\n' \
    "$N" "$(mib "$CATALOG_BYTES")" "$(nproc)" "$("$IOFD" --version 2>/dev/null || echo iofd)"
printf 'load average at start %s, at end %s\n\n' "$LOAD_START" "$LOAD_END"
row() { printf '| %-52s | %s |\n' "$1" "$2"; }
row step now
row "---" "---"
row '`iofd import`' "$(secs "$IMPORT_MS"), peak RssAnon $(mib $((IMPORT_ANON_KB * 1024))), RssFile $(mib $((IMPORT_FILE_KB * 1024)))"
row '`iofd serve` until `/readyz`' "$(secs "$READY_MS")"
row "first full.xml ($(mib "$FULL_BYTES"))" "$(secs "$FULL_MS")"
row '`iofd serve` until every gzip form is written' "$(secs "$GZIP_MS") (after readiness, in the background)"
row '**scratch -> served full.xml**' "**$(secs $((IMPORT_MS + READY_MS + FULL_MS)))**"
row "**cold restart ($DROPPED) -> first gateway byte**" "**${COLD_MS} ms**"
row "private memory during $DOWNLOADS concurrent full.xml downloads" \
    "RssAnon $(mib $((PEAK_ANON_KB * 1024))), Private_Dirty $(mib $((PEAK_DIRTY_KB * 1024))) (peak; $PEAK_CONNS connections at once, $OK_200 answered 200, $NO_ANSWER not answered within ${DL_SECONDS} s)"
row "ack -> light.xml ETag changed ($ROUNDS rounds)" "${ACK_MIN}-${ACK_MAX} ms"
row disk "store $(mib "$STORE_B"), artifacts $(mib "$ARTIFACTS_B"), changes $(mib "$CHANGES_B"); $((TOTAL_B / N)) bytes per product"

#!/usr/bin/env bash
# Scale-out bench (issue 18's "Measure"): one writer and REPLICAS read replicas over a local
# S3 (moto's server on loopback, objects in its memory), a synthetic catalog of N products
# imported into the writer's data directory, demo partners. Prints one table:
#
#   ack, local disk      ROUNDS sequential stock updates to the writer without an object
#                        store: time to the 200 (curl's time_total), p50 / p99
#   full sync            from launching the writer with --store on an empty bucket until an
#                        update sent once every file (gzip forms included) is on its disk
#                        is acknowledged: a manifest names them all; objects and bytes
#                        under objects/ then (moto's listing)
#   ack, object store    the same updates with --store: the answer waits for the manifest
#   per update           objects and bytes the bucket gained over those updates, per update
#                        and the writer's peak private memory (RssAnon, sampled every
#                        100 ms) meanwhile: files go up in 8 MiB parts, never whole
#   replica cold start   launch of `iofd serve --role replica` on an empty data directory
#                        until the first 200 gateway answer (fetches the whole manifest),
#                        and the replica's peak RssAnon meanwhile (downloads are streamed)
#   ack -> every replica ROUNDS updates to the writer: from the 200 until light.xml's ETag
#                        changed on every replica, p50 / p99
#
# Usage: benches/scale-out.sh N. Settings (environment): IOFD (a binary to measure instead of
# building this checkout in release mode), WORK (default: a temporary directory, removed at
# the end), ROUNDS (default 50), REPLICAS (default 2), PORT (default 18780; each node takes
# two ports from there, moto the one after them), FORCE=1 to run although the free disk looks
# too small. Needs curl and moto's server (`pip install 'moto[server]'`, with boto3).
set -euo pipefail

cd "$(dirname "$0")/.."
N=${1:?usage: benches/scale-out.sh N}
IOFD=${IOFD:-}
ROUNDS=${ROUNDS:-50}
REPLICAS=${REPLICAS:-2}
PORT=${PORT:-18780}
FORCE=${FORCE:-0}
WORK=${WORK:-$(mktemp -d -t iofd-scale-out-XXXXXX)}
MOTO_PORT=$((PORT + 2 * (REPLICAS + 1)))
MOTO="http://127.0.0.1:$MOTO_PORT"
BUCKET=iofd-bench
STORE="s3://$BUCKET/feeds"
FEED=/feeds/sklep-kowalski/demo-kowalski-4f9c2a7e1b/1
ADMIN_TOKEN=demo-admin-token
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION=us-east-1

log() { printf '>> %s\n' "$*" >&2; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
secs() { awk -v ms="$1" 'BEGIN {printf "%.2f s", ms / 1000}'; }
mib() { awk -v b="$1" 'BEGIN {printf "%.1f MB", b / 1048576}'; }
kib() { awk -v b="$1" 'BEGIN {printf "%.1f kB", b / 1024}'; }
# Sample a process's RssAnon every 100 ms into FILE (the peak, in kB) until it is killed.
peak_anon() { # pid file
    local peak=0 anon
    while kill -0 "$1" 2>/dev/null; do
        anon=$(awk '/^RssAnon:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0)
        [ "${anon:-0}" -gt "$peak" ] && peak=$anon && echo "$peak" >"$2"
        sleep 0.1
    done
}
# p50 and p99 (nearest rank) of the numbers on stdin, in ms.
pct() { sort -n | awk '{v[NR] = $1} END {
    i = int(NR * 0.5 + 0.999); j = int(NR * 0.99 + 0.999)
    printf "p50 %d ms, p99 %d ms (%d samples)", v[i], v[j], NR }'; }

PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; done
    rm -rf "$WORK"
}
trap cleanup EXIT

for tool in curl moto_server python3; do
    command -v "$tool" >/dev/null || {
        echo "$tool is missing" >&2
        exit 1
    }
done
# About 20 kB per product per data directory (writer and each replica) plus the catalog; the
# bucket lives in moto's memory.
need=$((N * 20 * 1024 * (REPLICAS + 2)))
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

# node NAME INDEX [serve flags...]: serve WORK/NAME on ports PORT+2*INDEX (public) and +1
# (admin); sets NODE_PID.
node() {
    local name=$1 index=$2
    shift 2
    IOFD_LOG=warn "$IOFD" serve --data "$WORK/$name" \
        --listen "127.0.0.1:$((PORT + 2 * index))" \
        --admin-listen "127.0.0.1:$((PORT + 2 * index + 1))" \
        --rate-limit 0 "$@" >>"$WORK/$name.log" 2>&1 &
    NODE_PID=$!
    PIDS+=("$NODE_PID")
}
public() { echo "http://127.0.0.1:$((PORT + 2 * $1))"; }
admin() { echo "http://127.0.0.1:$((PORT + 2 * $1 + 1))"; }
s3_flags=(--store "$STORE" --s3-endpoint "$MOTO" --s3-region us-east-1)

wait_200() { # url deadline-seconds pid
    local deadline=$(($(now_ms) + $2 * 1000))
    while [ "$(now_ms)" -lt "$deadline" ]; do
        [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$1")" = 200 ] && return 0
        kill -0 "$3" 2>/dev/null || {
            echo "a process exited; logs in $WORK" >&2
            tail -5 "$WORK"/*.log >&2
            exit 1
        }
        sleep 0.01
    done
    echo "$1 did not answer 200 within $2 s" >&2
    exit 1
}

stop() { # pid
    kill -TERM "$1"
    wait "$1" || true
}

QUANTITY=7000
# update ADMIN_URL: one stock update of product 1; prints the ms to its 200.
update() {
    QUANTITY=$((QUANTITY + 1))
    local body answer
    body=$(printf '{"kind":"stock","product":1,"warehouse":1,"quantity":"%d"}' "$QUANTITY")
    answer=$(curl -s -o /dev/null -w '%{http_code} %{time_total}' \
        -H "Authorization: Bearer $ADMIN_TOKEN" -H 'Content-Type: application/x-ndjson' \
        --data-binary "$body" "$1/v1/updates")
    [ "${answer%% *}" = 200 ] || {
        echo "the update was not acknowledged: $answer" >&2
        exit 1
    }
    awk -v s="${answer##* }" 'BEGIN {printf "%d\n", s * 1000}'
}

# bucket: "objects bytes manifests manifest-bytes" of the bucket (moto's listing).
bucket() {
    python3 - "$MOTO" "$BUCKET" <<'EOF'
import sys, boto3
s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1")
n = size = manifests = msize = 0
for page in s3.get_paginator("list_objects_v2").paginate(Bucket=sys.argv[2]):
    for o in page.get("Contents", []):
        if "/objects/" in o["Key"]:
            n += 1
            size += o["Size"]
        elif "/manifests/" in o["Key"]:
            manifests += 1
            msize += o["Size"]
print(n, size, manifests, msize)
EOF
}

log "generating and importing $N products"
"$IOFD" generate --products "$N" --seed 1 --out "$WORK/src" >/dev/null
IOFD_LOG=warn "$IOFD" import --data "$WORK/writer" "$WORK/src/catalog.jsonl" >"$WORK/import.log" 2>&1
rm -rf "$WORK/src"

log "ack latency on local disk ($ROUNDS updates)"
node writer 0
wait_200 "$(admin 0)/readyz" 1800 "$NODE_PID"
QUANTITY=10000
LOCAL_ACKS=$(for _ in $(seq 1 "$ROUNDS"); do update "$(admin 0)"; done | pct)
stop "$NODE_PID"

log "moto's server on $MOTO"
moto_server -H 127.0.0.1 -p "$MOTO_PORT" >"$WORK/moto.log" 2>&1 &
PIDS+=($!)
deadline=$(($(now_ms) + 30000))
until curl -s -o /dev/null "$MOTO"; do
    [ "$(now_ms)" -lt "$deadline" ] || {
        echo "moto_server did not answer" >&2
        exit 1
    }
    sleep 0.05
done
curl -sf -X PUT "$MOTO/$BUCKET" >/dev/null

log "writer with the object store: the full sync"
t=$(now_ms)
node writer 0 "${s3_flags[@]}"
WRITER_PID=$NODE_PID
echo 0 >"$WORK/writer.peak"
peak_anon "$WRITER_PID" "$WORK/writer.peak" &
SAMPLER=$!
wait_200 "$(admin 0)/readyz" 1800 "$WRITER_PID"
gzip_done() { curl -sfI -H 'Accept-Encoding: gzip' "$(public 0)$FEED/full.xml" | grep -qi '^content-encoding: *gzip'; }
until gzip_done; do sleep 0.05; done
# Every file is on disk now, gzip forms included; an update acknowledged after this is in a
# manifest that names them all (503 while the uploads take longer than the ack waits).
QUANTITY=9000
until [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $ADMIN_TOKEN" \
    -H 'Content-Type: application/x-ndjson' --data-binary \
    "{\"kind\":\"stock\",\"product\":1,\"warehouse\":1,\"quantity\":\"$((QUANTITY += 1))\"}" \
    "$(admin 0)/v1/updates")" = 200 ]; do
    kill -0 "$WRITER_PID" || exit 1
done
SYNC_MS=$(($(now_ms) - t))
# The files rendered for that update follow on the writer's next ticks.
last=$(bucket)
while sleep 2 && now=$(bucket) && [ "$now" != "$last" ]; do last=$now; done
read -r SYNC_OBJECTS SYNC_BYTES SYNC_MANIFESTS SYNC_MBYTES <<<"$now"
kill "$SAMPLER" 2>/dev/null || true
SYNC_PEAK_KB=$(cat "$WORK/writer.peak")

log "ack latency with the object store ($ROUNDS updates)"
QUANTITY=20000
STORE_ACKS=$(for _ in $(seq 1 "$ROUNDS"); do update "$(admin 0)"; done | pct)
last=$(bucket)
while sleep 2 && now=$(bucket) && [ "$now" != "$last" ]; do last=$now; done
read -r OBJECTS BYTES MANIFESTS MBYTES <<<"$now"
PER_UPDATE_OBJECTS=$(awk -v a="$OBJECTS" -v b="$SYNC_OBJECTS" -v r="$ROUNDS" 'BEGIN {printf "%.1f", (a - b) / r}')
PER_UPDATE_BYTES=$(((BYTES - SYNC_BYTES) / ROUNDS))
PER_UPDATE_MANIFESTS=$(awk -v a="$MANIFESTS" -v b="$SYNC_MANIFESTS" -v r="$ROUNDS" 'BEGIN {printf "%.1f", (a - b) / r}')
PER_UPDATE_MBYTES=$(((MBYTES - SYNC_MBYTES) / ROUNDS))

log "replica cold start ($REPLICAS replicas)"
COLD=()
COLD_PEAK=()
for i in $(seq 1 "$REPLICAS"); do
    t=$(now_ms)
    node "replica$i" "$i" --role replica "${s3_flags[@]}"
    echo 0 >"$WORK/replica$i.peak"
    peak_anon "$NODE_PID" "$WORK/replica$i.peak" &
    SAMPLER=$!
    wait_200 "$(public "$i")$FEED/gateway.xml" 1800 "$NODE_PID"
    COLD+=($(($(now_ms) - t)))
    kill "$SAMPLER" 2>/dev/null || true
    COLD_PEAK+=("$(mib $(($(cat "$WORK/replica$i.peak") * 1024)))")
done

log "update -> light.xml on every replica ($ROUNDS updates)"
etag() { curl -sfI "$1$FEED/light.xml" | tr -d '\r' | awk 'tolower($1)=="etag:" {print $2}'; }
QUANTITY=30000
VISIBLE=$(for _ in $(seq 1 "$ROUNDS"); do
    before=()
    for i in $(seq 1 "$REPLICAS"); do before+=("$(etag "$(public "$i")")"); done
    update "$(admin 0)" >/dev/null
    t=$(now_ms)
    deadline=$((t + 30000))
    for i in $(seq 1 "$REPLICAS"); do
        while [ "$(etag "$(public "$i")")" = "${before[$((i - 1))]}" ]; do
            [ "$(now_ms)" -lt "$deadline" ] || {
                echo "replica $i's light.xml did not change within 30 s of an ack" >&2
                exit 1
            }
            sleep 0.005
        done
    done
    echo $(($(now_ms) - t))
done | pct)

printf '\niofd scale-out bench: N = %s products, %s replicas, moto on loopback, %s cores, %s\n\n' \
    "$N" "$REPLICAS" "$(nproc)" "$("$IOFD" --version 2>/dev/null || echo iofd)"
row() { printf '| %-46s | %s |\n' "$1" "$2"; }
row measure value
row "---" "---"
row "ack, local disk" "$LOCAL_ACKS"
row "ack, object store" "$STORE_ACKS"
row "full sync (writer start -> bucket complete)" "$(secs "$SYNC_MS"); $SYNC_OBJECTS objects, $(mib "$SYNC_BYTES"); $SYNC_MANIFESTS manifests, $(kib "$SYNC_MBYTES"); writer peak RssAnon $(mib $((SYNC_PEAK_KB * 1024)))"
row "per single-product update" "$PER_UPDATE_OBJECTS objects, $(kib "$PER_UPDATE_BYTES"); $PER_UPDATE_MANIFESTS manifests, $(kib "$PER_UPDATE_MBYTES")"
row "replica cold start -> first gateway byte" "$(printf '%s ms ' "${COLD[@]}")(peak RssAnon $(printf '%s ' "${COLD_PEAK[@]}"| sed 's/ $//'))"
row "ack -> light.xml changed on every replica" "$VISIBLE"

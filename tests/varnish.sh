#!/usr/bin/env bash
# A real cache in front of iofd: starts iofd (demo catalog, plus a twin of sklep-kowalski) and
# Varnish with vmod-digest on loopback ports with fixtures/varnish/iofd.vcl, and shows that
#   0. signed profile URLs: two partners of equal settings fetch full.xml through the cache,
#      the second is a HIT and the origin served the body once; a tampered or expired
#      signature is refused by Varnish without reaching the origin; a revoked partner's
#      gateway is refused at once, and its signed URL stops working at the edge when it
#      expires; Range on a shared copy works; a superseded file's purge clears the shared copy;
#   1. a second fetch is a cache hit (Age, X-Varnish with two ids);
#   2. gzip and identity variants are cached separately (Vary: Accept-Encoding);
#   3. a Range request through the cache returns the right bytes;
#   4. revoking a partner (partners.toml edited, then `kill -HUP`, iofd's reload) makes iofd's
#      purge hook ban the partner's surrogate key in Varnish, and the cached copy stops being
#      served, while another partner's cached files stay cached.
# Installs Varnish and vmod-digest (Debian packages `varnish`, `varnish-vmod-digest`) when
# missing. Cleans up its processes.
set -euo pipefail
cd "$(dirname "$0")/.."

started=$SECONDS
VARNISHD=$(command -v varnishd || true)
[ -z "$VARNISHD" ] && [ -x /usr/sbin/varnishd ] && VARNISHD=/usr/sbin/varnishd
if [ -z "$VARNISHD" ] || ! ls /usr/lib/*/varnish/vmods/libvmod_digest.so >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  SUDO=""
  if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq varnish varnish-vmod-digest >/dev/null
  VARNISHD=$(command -v varnishd || echo /usr/sbin/varnishd)
fi
VARNISHADM=$(command -v varnishadm || echo /usr/bin/varnishadm)

cargo build --locked --quiet
IOFD=target/debug/iofd

WORK=$(mktemp -d)
# varnishd's worker process runs as an unprivileged user when started as root.
chmod 755 "$WORK"
IOFD_PID=""
VARNISH_PID=""
cleanup() {
  [ -n "$VARNISH_PID" ] && kill "$VARNISH_PID" 2>/dev/null && wait "$VARNISH_PID" 2>/dev/null || true
  [ -n "$IOFD_PID" ] && kill "$IOFD_PID" 2>/dev/null && wait "$IOFD_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*" >&2
  echo "--- iofd log (tail)" >&2
  tail -n 30 "$WORK/iofd.log" >&2 || true
  exit 1
}
pass() { echo "ok: $*"; }

# A free loopback port: nothing answers a connection to it.
free_port() {
  local p
  for _ in $(seq 1 50); do
    p=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"
      return
    fi
  done
  fail "no free port"
}
PUBLIC=$(free_port)
ADMIN=$(free_port)
CACHE=$(free_port)
TOKEN="purge-$RANDOM$RANDOM"

# The demo partners and a twin of sklep-kowalski: same settings, own id and token.
mkdir -p "$WORK/data"
{
  cat fixtures/demo/partners.toml
  printf '\n[[partner]]\nid = "kowalski-twin"\ntoken = "demo-twin-000000000001"\n'
  printf 'offer_access = true # twin\nshops = [1]\nformat = "iof-3.0"\nfile_type = "xml"\n'
  printf 'languages = ["pol", "eng"]\ncurrency = "PLN"\ndiscount_percent = "0"\n'
  printf 'wholesale = false\nonly_in_stock = false\n'
} >"$WORK/data/partners.toml"

"$IOFD" serve --data "$WORK/data" \
  --listen "127.0.0.1:$PUBLIC" --admin-listen "127.0.0.1:$ADMIN" \
  --public-url "http://127.0.0.1:$CACHE" \
  --purge-url "http://127.0.0.1:$CACHE/" --purge-style varnish --purge-header "X-Purge-Token: $TOKEN" \
  >"$WORK/iofd.log" 2>&1 &
IOFD_PID=$!

# No signing key is configured: iofd generates one under the data directory at start-up;
# the edge is given the same key.
for _ in $(seq 1 100); do
  [ -s "$WORK/data/signing.key" ] && break
  kill -0 "$IOFD_PID" 2>/dev/null || fail "iofd exited"
  sleep 0.1
done
SIGNING_KEY=$(cat "$WORK/data/signing.key" 2>/dev/null) || fail "no generated signing key"
[ "$(stat -c %a "$WORK/data/signing.key")" = 600 ] || fail "the signing key is not mode 0600"
sed -e "s/@IOFD_HOST@/127.0.0.1/" -e "s/@IOFD_PORT@/$PUBLIC/" -e "s/@PURGE_TOKEN@/$TOKEN/" \
  -e "s/@SIGNING_KEY@/$SIGNING_KEY/" -e "s/@SIGNING_KEY_PREVIOUS@/$SIGNING_KEY/" \
  fixtures/varnish/iofd.vcl >"$WORK/iofd.vcl"

"$VARNISHD" -F -n "$WORK/varnish" -a "127.0.0.1:$CACHE" -f "$WORK/iofd.vcl" \
  -s malloc,64m -p http_gzip_support=off >"$WORK/varnish.log" 2>&1 &
VARNISH_PID=$!

for _ in $(seq 1 100); do
  if curl -sf "http://127.0.0.1:$ADMIN/readyz" >/dev/null 2>&1 \
    && curl -s -o /dev/null "http://127.0.0.1:$CACHE/" 2>/dev/null; then
    break
  fi
  kill -0 "$IOFD_PID" 2>/dev/null || fail "iofd exited"
  kill -0 "$VARNISH_PID" 2>/dev/null || { cat "$WORK/varnish.log" >&2; fail "varnishd exited"; }
  sleep 0.2
done
curl -sf "http://127.0.0.1:$ADMIN/readyz" >/dev/null || fail "iofd is not ready"

V="http://127.0.0.1:$CACHE"
KOWALSKI="/feeds/sklep-kowalski/demo-kowalski-4f9c2a7e1b/1"
# Ready means identity is served; the gzip forms follow. Wait for them at the origin, so the
# cache does not store identity as the gzip variant before step 2 asks for it.
for _ in $(seq 1 300); do
  curl -sfI -H 'Accept-Encoding: gzip' "http://127.0.0.1:$PUBLIC$KOWALSKI/full.xml" \
    | grep -qi '^content-encoding: *gzip' && break
  sleep 0.1
done
EU="/feeds/eu-reseller/demo-eureseller-8d31b6c05a/1"

# fetch NAME URL [curl args...]: headers to $WORK/NAME.h, body to $WORK/NAME.b
fetch() {
  local name=$1 url=$2
  shift 2
  curl -s -D "$WORK/$name.h" -o "$WORK/$name.b" "$@" "$url" || fail "curl $url"
}
header() { grep -i "^$2:" "$WORK/$1.h" | head -n1 | cut -d: -f2- | tr -d '\r' | sed 's/^ *//'; }
status() { head -n1 "$WORK/$1.h" | cut -d' ' -f2; }

TWIN="/feeds/kowalski-twin/demo-twin-000000000001/1"
# Requests the origin answered so far (its own count, from the admin listener).
origin_requests() {
  curl -s "http://127.0.0.1:$ADMIN/metrics" | awk '/^iofd_http_requests_total\{/ { n += $NF } END { print n + 0 }'
}
origin_full_bodies() {
  curl -s "http://127.0.0.1:$ADMIN/metrics" | awk '/^iofd_http_requests_total\{route="full",status="200"/ { n += $NF } END { print n + 0 }'
}
# The signed URL of full.xml in a gateway (XML-unescaped), as a path on the cache.
full_url_in() { grep -o '<full url="[^"]*"' "$WORK/$1.b" | head -n1 | sed -e 's/^<full url="//' -e 's/"$//' -e 's/&amp;/\&/g' -e "s|^http://127.0.0.1:$CACHE||"; }
# sign PARTNER PATH EXPIRES: the signature iofd and the VCL compute.
sign() {
  python3 -c 'import hmac, hashlib, sys; print(hmac.new(sys.argv[1].encode(), "\n".join(sys.argv[2:]).encode(), hashlib.sha256).hexdigest())' "$SIGNING_KEY" "$1" "$2" "$3"
}

# 0. Signed profile URLs: twins share one cached copy; the edge verifies signatures.
fetch gw1 "$V$KOWALSKI/gateway.xml"
fetch gw2 "$V$TWIN/gateway.xml"
[ "$(status gw1)" = 200 ] && [ "$(status gw2)" = 200 ] || fail "gateways: $(status gw1) $(status gw2)"
[ "$(header gw1 X-Cache)" = MISS ] || fail "a gateway must not be served from the cache"
OURS=$(full_url_in gw1)
THEIRS=$(full_url_in gw2)
[ "${OURS%%\?*}" = "${THEIRS%%\?*}" ] || fail "twins list different paths: $OURS $THEIRS"
[ "$OURS" != "$THEIRS" ] || fail "twins share a signature"
bodies_before=$(origin_full_bodies)
fetch s1 "$V$OURS"
fetch s2 "$V$THEIRS"
[ "$(status s1)" = 200 ] && [ "$(status s2)" = 200 ] || fail "signed full.xml: $(status s1) $(status s2)"
[ "$(header s1 X-Cache)" = MISS ] || fail "first signed fetch should be a miss"
[ "$(header s2 X-Cache)" = HIT ] || fail "the twin's fetch should be a hit on the shared copy"
cmp -s "$WORK/s1.b" "$WORK/s2.b" || fail "twins got different bytes"
[ $(($(origin_full_bodies) - bodies_before)) = 1 ] || fail "the origin served full.xml $(($(origin_full_bodies) - bodies_before)) times, not once"
pass "twins share one cached full.xml (second a HIT, origin served the body once)"

FULL_PATH=${OURS%%\?*}
now=$(date +%s)
expired=$((now - 10))
before=$(origin_requests)
SIG=${OURS##*sig=}
fetch t1 "$V${OURS%sig=*}sig=$(printf '%s' "$SIG" | tr '0-9a-f' '1-9a-f0')"
fetch t2 "$V${OURS/partner=sklep-kowalski/partner=kowalski-twin}"
fetch t3 "$V$FULL_PATH?partner=sklep-kowalski&expires=$expired&sig=$(sign sklep-kowalski "$FULL_PATH" "$expired")"
fetch t4 "$V$FULL_PATH"
for t in t1 t2 t3 t4; do
  [ "$(status $t)" = 403 ] || fail "$t: tampered/expired/unsigned answered $(status $t)"
done
[ "$(origin_requests)" = "$before" ] || fail "refused signatures reached the origin ($before -> $(origin_requests) requests)"
pass "tampered, expired and unsigned profile URLs refused by Varnish; the origin saw none"

fetch sr "$V$OURS" -r 100-199
[ "$(status sr)" = 206 ] && [ "$(header sr X-Cache)" = HIT ] || fail "range on the shared copy: $(status sr) $(header sr X-Cache)"
cmp -s <(tail -c +101 "$WORK/s1.b" | head -c 100) "$WORK/sr.b" || fail "range bytes of the shared copy differ"
pass "Range on the shared copy works (206, HIT)"

# Revoke the twin: its gateway is refused at once; a signed URL it holds works at the edge
# until it expires (the cache does not ask the origin), then is refused there.
soon=$(($(date +%s) + 3))
SOON_URL="$FULL_PATH?partner=kowalski-twin&expires=$soon&sig=$(sign kowalski-twin "$FULL_PATH" "$soon")"
sed -i 's/^offer_access = true # twin$/offer_access = false # twin/' "$WORK/data/partners.toml"
kill -HUP "$IOFD_PID"
revoked=""
for _ in $(seq 1 50); do
  fetch gw3 "$V$TWIN/gateway.xml"
  if [ "$(status gw3)" = 403 ]; then revoked=yes; break; fi
  sleep 0.1
done
[ -n "$revoked" ] || fail "the revoked twin's gateway is still served"
fetch x1 "$V$SOON_URL"
[ "$(status x1)" = 200 ] && [ "$(header x1 X-Cache)" = HIT ] || fail "an unexpired signed URL at the edge: $(status x1) $(header x1 X-Cache)"
while [ "$(date +%s)" -le "$soon" ]; do sleep 0.2; done
before=$(origin_requests)
fetch x2 "$V$SOON_URL"
[ "$(status x2)" = 403 ] || fail "the revoked twin's signed URL still works after it expired: $(status x2)"
[ "$(origin_requests)" = "$before" ] || fail "the expired URL reached the origin"
fetch x3 "$V$OURS"
[ "$(status x3)" = 200 ] || fail "the other twin lost access: $(status x3)"
pass "revoked twin: gateway refused at once, its signed URL refused by the edge once expired, the other twin still served"

# A catalog change supersedes light.xml: the purge of its profile path (p:{key}/light) clears
# the one shared copy, and the next fetch through the cache gets the new bytes.
LIGHT=$(grep -o '<light url="[^"]*"' "$WORK/gw1.b" | head -n1 | sed -e 's/^<light url="//' -e 's/"$//' -e 's/&amp;/\&/g' -e "s|^http://127.0.0.1:$CACHE||")
fetch l1 "$V$LIGHT"
fetch l2 "$V$LIGHT"
[ "$(header l2 X-Cache)" = HIT ] || fail "shared light.xml should be cached"
curl -sf -H "Authorization: Bearer demo-admin-token" --data-binary \
  '{"kind":"stock","product":1,"warehouse":1,"quantity":"4321"}' \
  "http://127.0.0.1:$ADMIN/v1/updates" >/dev/null || fail "stock update refused"
purged=""
for _ in $(seq 1 50); do
  fetch l3 "$V$LIGHT"
  if [ "$(header l3 X-Cache)" = MISS ]; then purged=yes; break; fi
  sleep 0.2
done
[ -n "$purged" ] || fail "the superseded shared light.xml is still served from the cache"
cmp -s "$WORK/l1.b" "$WORK/l3.b" && fail "light.xml after the update has the old bytes"
pass "a superseded file's profile-path purge clears the shared copy (next fetch a MISS, new bytes)"

# 1. A second fetch is a hit.
fetch a1 "$V$KOWALSKI/full.xml"
fetch a2 "$V$KOWALSKI/full.xml"
[ "$(status a1)" = 200 ] || fail "first fetch: $(status a1)"
[ "$(header a1 X-Cache)" = MISS ] || fail "first fetch should be a miss"
[ "$(header a2 X-Cache)" = HIT ] || fail "second fetch should be a hit"
[ "$(header a2 X-Varnish | wc -w)" = 2 ] || fail "X-Varnish of a hit names two transactions: $(header a2 X-Varnish)"
[ -n "$(header a2 Age)" ] || fail "no Age on a hit"
cmp -s "$WORK/a1.b" "$WORK/a2.b" || fail "hit and miss bodies differ"
pass "second fetch is a hit (X-Varnish: $(header a2 X-Varnish), Age: $(header a2 Age))"

# 2. gzip and identity are separate variants.
fetch g1 "$V$KOWALSKI/full.xml" -H 'Accept-Encoding: gzip'
fetch g2 "$V$KOWALSKI/full.xml" -H 'Accept-Encoding: gzip, deflate, br'
fetch i3 "$V$KOWALSKI/full.xml"
[ "$(header g1 Content-Encoding)" = gzip ] || fail "gzip variant without Content-Encoding"
[ "$(header g1 X-Cache)" = MISS ] || fail "the gzip variant was served from the identity object"
[ "$(header g2 X-Cache)" = HIT ] || fail "second gzip fetch should be a hit"
[ "$(header i3 X-Cache)" = HIT ] && [ -z "$(header i3 Content-Encoding)" ] || fail "identity variant lost"
[ "$(header g1 ETag)" != "$(header a1 ETag)" ] || fail "variants share an ETag"
cmp -s <(gunzip -c "$WORK/g2.b") "$WORK/a1.b" || fail "gzip variant does not decompress to the identity bytes"
pass "gzip ($(stat -c %s "$WORK/g1.b") bytes) and identity ($(stat -c %s "$WORK/a1.b") bytes) cached separately"

# 3. A range through the cache.
fetch r1 "$V$KOWALSKI/full.xml" -r 1000-1999
[ "$(status r1)" = 206 ] || fail "range: $(status r1)"
[ "$(header r1 Content-Range)" = "bytes 1000-1999/$(stat -c %s "$WORK/a1.b")" ] || fail "Content-Range: $(header r1 Content-Range)"
# (Process substitutions: in a pipeline, head closing early would fail tail under pipefail.)
cmp -s <(tail -c +1001 "$WORK/a1.b" | head -c 1000) "$WORK/r1.b" || fail "range bytes differ"
fetch r2 "$V$EU/light.xml" -r 10-19
fetch r2full "$V$EU/light.xml"
cmp -s <(tail -c +11 "$WORK/r2full.b" | head -c 10) "$WORK/r2.b" || fail "range on a miss: bytes differ"
pass "Range through the cache returns the right bytes (hit and miss)"

# 4. Revoke a partner: edit partners.toml and reload (SIGHUP); the purge hook bans its key.
fetch e1 "$V$EU/full.xml"
fetch e2 "$V$EU/full.xml"
[ "$(header e2 X-Cache)" = HIT ] || fail "eu-reseller full.xml should be cached"
sed -i '0,/offer_access = true/s//offer_access = false/' "$WORK/data/partners.toml"
grep -q "offer_access = false" "$WORK/data/partners.toml" || fail "could not edit partners.toml"
kill -HUP "$IOFD_PID"
purged=""
for _ in $(seq 1 50); do
  if curl -s "http://127.0.0.1:$ADMIN/metrics" | grep -q '^iofd_purge_requests_total{result="ok"} [1-9]'; then
    purged=yes
    break
  fi
  sleep 0.2
done
[ -n "$purged" ] || fail "the purge hook did not reach Varnish"
fetch a4 "$V$KOWALSKI/full.xml"
fetch g4 "$V$KOWALSKI/full.xml" -H 'Accept-Encoding: gzip'
[ "$(status a4)" = 403 ] || fail "revoked partner still served from cache: $(status a4) $(header a4 X-Cache)"
[ "$(status g4)" = 403 ] || fail "revoked partner's gzip variant still served: $(status g4)"
fetch a5 "$V$KOWALSKI/full.xml"
[ "$(status a5)" = 403 ] || fail "the 403 was not passed on again"
fetch e3 "$V$EU/full.xml"
[ "$(status e3)" = 200 ] && [ "$(header e3 X-Cache)" = HIT ] || fail "another partner's cache was purged too"
bans=$("$VARNISHADM" -n "$WORK/varnish" ban.list 2>/dev/null | grep -c 'partner:sklep-kowalski' || true)
pass "revoked: purge hook banned partner:sklep-kowalski (${bans} ban(s) listed), cached copy no longer served (403), eu-reseller still a hit"

echo "varnish: all checks passed in $((SECONDS - started)) s"

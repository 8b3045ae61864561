#!/usr/bin/env bash
# `systemd-analyze verify` of packaging/iofd.service. The unit names /usr/bin/iofd, which a
# build machine does not have installed: the check runs on a copy whose ExecStart points at
# the binary just built, so a missing binary is still an error, never skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --locked --quiet
BIN="$PWD/target/debug/iofd"
[ -x "$BIN" ] || { echo "FAIL: no binary at $BIN" >&2; exit 1; }
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
sed -e "s|/usr/bin/iofd|$BIN|" packaging/iofd.service >"$WORK/iofd.service"
grep -q "^ExecStart=$BIN serve" "$WORK/iofd.service" || { echo "FAIL: ExecStart not rewritten" >&2; exit 1; }
# Warnings (as errors for a unit of ours) go to stderr; any output there fails the check.
if ! systemd-analyze verify "$WORK/iofd.service" 2>"$WORK/verify.log"; then
  cat "$WORK/verify.log" >&2
  echo "FAIL: systemd-analyze verify" >&2
  exit 1
fi
if grep -v -e '^$' "$WORK/verify.log" | grep -q .; then
  cat "$WORK/verify.log" >&2
  echo "FAIL: systemd-analyze verify reported problems" >&2
  exit 1
fi
echo "ok: systemd-analyze verify packaging/iofd.service"

#!/usr/bin/env bash
# Crash test: clients stream stock updates to a real `iofd serve` while it is killed with
# SIGKILL at random moments (IOFD_CRASH_KILLS, default 50); after each kill the store must
# load, validate, and hold every acknowledged update. Reproduce a run with IOFD_CRASH_SEED.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --locked --test crash -- --ignored --nocapture

#!/usr/bin/env bash
# Crash test: a real `iofd serve` on a many-shard catalog is killed with SIGKILL at random
# moments (IOFD_CRASH_KILLS, default 12) while clients send full syncs, stock updates, large
# (spooled) batches and drop-folder files; after each kill the store must verify and hold
# every acknowledged write, each dropped file must be applied exactly once, and after each
# restart the change log must hold every acknowledged change. Reproduce with IOFD_CRASH_SEED.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --locked --test crash -- --ignored --nocapture

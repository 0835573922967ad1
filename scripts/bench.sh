#!/usr/bin/env bash
# postern's load benchmark (docs/performance.md): release build, server pinned
# to CPU 0 and the load generator to CPU 1 when the machine has two or more.
# Extra arguments go to the benchmark (--quick, --out FILE).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --bin postern --example loadbench
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
  exec taskset -c 1 target/release/examples/loadbench --server-cpu 0 "$@"
else
  exec target/release/examples/loadbench "$@"
fi

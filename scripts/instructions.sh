#!/usr/bin/env bash
# Instructions the server executes per request, counted by callgrind
# (docs/performance.md): a figure that hardly depends on the machine or its
# load. Needs valgrind. Argument: requests per batch (default 2000).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --bin postern
exec python3 scripts/instructions.py "$@"

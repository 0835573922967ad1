#!/usr/bin/env bash
# Runs every test of postern. Installs what the tests need when it is missing,
# so it works on a clean machine that has only the Rust toolchain.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
command -v zip >/dev/null 2>&1 || need_apt+=(zip)
command -v tar >/dev/null 2>&1 || need_apt+=(tar)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing: ${need_apt[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}"
fi

cargo test --all-targets --locked

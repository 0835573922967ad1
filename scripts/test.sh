#!/usr/bin/env bash
# Runs every test of postern. Installs what the tests need when it is missing,
# so it works on a clean machine that has only the Rust toolchain.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
# browser tests: Debian's Chromium and its WebDriver
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need_apt+=(chromium-driver)
command -v zip >/dev/null 2>&1 || need_apt+=(zip)
command -v tar >/dev/null 2>&1 || need_apt+=(tar)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing: ${need_apt[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}"
fi

cargo test --all-targets --locked

# Fuzz targets (fuzz/, docs/fuzzing.md): build every target and run each for
# FUZZ_SECONDS (default 20) from its committed seeds, so a regression that a
# short run finds fails the test command. New inputs go to the ignored
# fuzz/corpus-run/, never into the committed corpus. FUZZ_SECONDS=0 skips.
fuzz_secs="${FUZZ_SECONDS:-20}"
if [ "$fuzz_secs" != 0 ]; then
  command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
  (
    cd fuzz
    export RUSTC_BOOTSTRAP=1 # cargo-fuzz passes -Z flags; this lets stable accept them
    # No sanitizer: postern forbids unsafe code and the targets assert their
    # properties in Rust, so AddressSanitizer adds little here but a build
    # several times longer (docs/fuzzing.md has the ASan command for long runs).
    cargo fuzz build -s none
    for t in $(cargo fuzz list); do
      mkdir -p "corpus-run/$t"
      dict=()
      [ -f "dict/$t.dict" ] && dict=("-dict=dict/$t.dict")
      echo "fuzzing $t for ${fuzz_secs}s"
      cargo fuzz run -s none "$t" "corpus-run/$t" "corpus/$t" -- \
        -max_total_time="$fuzz_secs" -timeout=10 -print_final_stats=1 "${dict[@]}"
    done
  )
fi

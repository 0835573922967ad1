#!/usr/bin/env bash
# Mail import/export throughput of the release build, on a scratch data
# directory: `scripts/bench_mail.sh [N_SMALL] [N_LARGE]`. Prints the figures
# docs/performance.md reports. Needs python3, tar and GNU time.
set -euo pipefail
cd "$(dirname "$0")/.."
small=${1:-10000}
large=${2:-1000}
bin=target/release/postern
[ -x "$bin" ] || cargo build --release --locked
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# A data directory with the demo account: localserve creates it, SIGTERM stops it.
"$bin" localserve --dir "$work/local" --ip 127.0.0.1 >"$work/localserve.log" 2>&1 &
pid=$!
for _ in $(seq 50); do grep -q "stop with" "$work/localserve.log" 2>/dev/null && break; sleep 0.2; done
kill -TERM "$pid"; wait "$pid" || true
data="$work/local/data"

python3 tests/fixtures/mailfix.py big "$work/small.tgz" "$small" 20
python3 tests/fixtures/mailfix.py big "$work/large.tgz" "$large" 4200   # ~50 KB each

run() { # name archive count
  local mbox_bytes
  mbox_bytes=$(tar xzOf "$2" | wc -c)
  /usr/bin/time -f "%e %M" -o "$work/time" "$bin" import demo "$2" --dir "$data" 2>/dev/null
  read -r secs rss <"$work/time"
  python3 - "$1" "$3" "$mbox_bytes" "$secs" "$rss" <<'PY'
import sys
name, n, b, s, rss = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
print(f"import {name}: {n} messages, {b/1e6:.1f} MB in {s:.2f} s = {n/s:.0f} msg/s, {b/1e6/s:.1f} MB/s, peak RSS {rss/1024:.0f} MiB")
PY
}
run small "$work/small.tgz" "$small"
run large "$work/large.tgz" "$large"

for fmt in mbox maildir; do
  /usr/bin/time -f "%e %M" -o "$work/time" "$bin" export demo --format "$fmt" --archive tgz --dir "$data" >"$work/export.tgz" 2>/dev/null
  read -r secs rss <"$work/time"
  raw=$(tar xzOf "$work/export.tgz" | wc -c)
  python3 -c "import sys; r=$raw; s=$secs; print(f'export $fmt.tgz: {r/1e6:.1f} MB of mail in {s:.2f} s = {r/1e6/s:.1f} MB/s, peak RSS {$rss/1024:.0f} MiB')"
done

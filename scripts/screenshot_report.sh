#!/usr/bin/env bash
# Render a run's report.html in headless Chromium (Debian's `chromium` package) and save a PNG beside it.
#   bash scripts/screenshot_report.sh RUN_DIR [WIDTHxHEIGHT]
set -euo pipefail
run_dir=$(cd "$1" && pwd)
size=${2:-1300x3000}
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking \
  --disable-component-update --disable-sync --user-data-dir="$profile" --hide-scrollbars \
  --window-size="${size/x/,}" --screenshot="$run_dir/report.png" "file://$run_dir/report.html" >/dev/null 2>&1
echo "$run_dir/report.png"

#!/usr/bin/env bash
# Copy a training run's artifact (weights + card) and its report into models/<name>/ for bundling.
# Usage: scripts/bundle_model.sh RUN_DIR MODEL_DIR
set -euo pipefail
run="$1"; dest="$2"
test -f "$run/artifact/card.json" || { echo "error: $run/artifact/card.json not found" >&2; exit 2; }
tmp="$(mktemp -d "${dest%/}.tmp.XXXX")"
cp "$run"/artifact/* "$tmp"/
for f in report.md report.json roc.png pr.png reliability.png; do
  [ -f "$run/$f" ] && cp "$run/$f" "$tmp/"
done
chmod 755 "$tmp"; chmod 644 "$tmp"/*
rm -rf "$dest"
mv "$tmp" "$dest"
du -sh "$dest"

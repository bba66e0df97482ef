#!/usr/bin/env bash
# Install what the end-to-end browser tests need, when missing: Debian's Chromium and espeak-ng (apt), axe-core (npm).
# Never runs `playwright install`: Playwright drives /usr/bin/chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
# espeak-ng synthesises the speech the dictation tests transcribe (tests/notes/test_transcribe.py, the e2e mic test).
NEED=()
if ! command -v chromium >/dev/null 2>&1 && [ ! -x /usr/bin/chromium ]; then NEED+=(chromium); fi
if ! command -v espeak-ng >/dev/null 2>&1; then NEED+=(espeak-ng); fi
# dciodvfy (dicom3tools) checks the DICOM SR and Encapsulated PDF the service exports (tests/reports/test_dicom_out.py).
if ! command -v dciodvfy >/dev/null 2>&1; then NEED+=(dicom3tools); fi
if [ "${#NEED[@]}" -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${NEED[@]}"
fi
if [ ! -f node_modules/axe-core/axe.min.js ]; then
  npm ci --no-audit --no-fund 2>/dev/null || npm install --no-audit --no-fund
fi
echo "e2e setup: $(/usr/bin/chromium --version 2>/dev/null || echo 'chromium missing'); axe-core $(node -p "require('./node_modules/axe-core/package.json').version")"

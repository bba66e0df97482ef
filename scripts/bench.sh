#!/usr/bin/env bash
# Run every benchmark (real data from ../shared/data; long on a CPU). Each writes bench/results/<name>.json.
set -uo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
status=0
for script in bench/fundus_odir.py bench/calibration_consistency.py bench/explain_sanity.py bench/ecg_intervals.py bench/ecg_ptbxl.py \
              bench/ecg_robustness.py bench/ecg_explain_sanity.py bench/inference.py bench/vessels.py bench/quality.py bench/schemathesis_run.py \
              bench/load.py; do
  [ -f "$script" ] || continue
  echo "== $script"
  .venv/bin/python "$script" || { echo "!! $script failed" >&2; status=1; }
done
exit $status

#!/usr/bin/env bash
# The default test run (what `make test` and CI run): everything but slow tests.
# pytest exit code 5 ("no tests collected") is an error here: a run that tests nothing must not pass.
set -uo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1
.venv/bin/python -m pytest -q -m "not slow" "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
  echo "error: pytest collected no tests" >&2
  exit 1
fi
exit "$rc"

#!/usr/bin/env bash
# Run the test suite in .venv (set up by tools/setup_env.sh). Extra args go to pytest.
# pytest's exit code 5 ("no tests collected") is a failure here: a suite that
# silently collects nothing must not pass CI.
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" MPLBACKEND=Agg
.venv/bin/python -m pytest tests -p no:cacheprovider "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
  echo "run_tests.sh: pytest collected no tests" >&2
  exit 1
fi
exit "$rc"

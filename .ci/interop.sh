#!/usr/bin/env bash
# CI for the simulator adapters (qnjax.interop): SeQUeNCe needs Python >= 3.12, so these
# tests run in their own 3.12 venv against the real `sequence` and `requsim` packages.
# Called by .ci/run after the main suite; runnable on its own from anywhere.
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1

PY=/root/.pyenv/versions/3.12.1/bin/python
if [ ! -x "$PY" ]; then
  PY="$(command -v python3.12 || true)"
fi
if [ -z "$PY" ]; then
  echo "interop: no Python 3.12 interpreter found (pyenv 3.12.1 or python3.12 on PATH)" >&2
  exit 1
fi

"$PY" -m venv .ci-venv312
. .ci-venv312/bin/activate
python -m pip install -q --upgrade pip
pip install -q -e ".[sequence,requsim,test]"
# The adapters must be exercised against the real simulators, not skipped.
python -c "import sequence, requsim; print('interop: sequence', __import__('importlib.metadata').metadata.version('sequence'), '| requsim', __import__('importlib.metadata').metadata.version('requsim'))"
pytest -q tests/interop
deactivate

#!/usr/bin/env bash
# CI for the simulator adapters (qnjax.interop): SeQUeNCe needs Python >= 3.12, so these
# tests run in their own 3.12 venv against the real `sequence` and `requsim` packages.
# Called by .ci/run after the main suite; runnable on its own from anywhere.
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1

# A Python 3.12 interpreter: $QNJAX_PYTHON312, else python3.12 on PATH, else pyenv's newest 3.12.
find_py312() {
  if [ -n "${QNJAX_PYTHON312:-}" ]; then echo "$QNJAX_PYTHON312"; return; fi
  if python3.12 -c 'import sys; assert sys.version_info[:2] == (3, 12)' >/dev/null 2>&1; then
    command -v python3.12; return
  fi
  if command -v pyenv >/dev/null 2>&1; then
    local v
    v="$(pyenv versions --bare 2>/dev/null | grep -E '^3\.12(\.[0-9]+)?$' | sort -V | tail -1)"
    if [ -n "$v" ]; then echo "$(pyenv root)/versions/$v/bin/python"; return; fi
  fi
}
PY="$(find_py312)"
if [ -z "$PY" ] || ! "$PY" -c 'import sys; assert sys.version_info[:2] == (3, 12)' >/dev/null 2>&1; then
  echo "interop: no Python 3.12 interpreter found (set QNJAX_PYTHON312, put python3.12 on PATH, or install 3.12 with pyenv)" >&2
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

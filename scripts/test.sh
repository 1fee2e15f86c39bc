#!/usr/bin/env bash
# Lint and test densevit: set up (or reuse) the virtual environment, then ruff and the whole pytest suite.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh tests/models -x`. Exits non-zero on any failure.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup_env.sh"

echo "== ruff check ."
ruff check .
echo "== pytest"
python -m pytest "$@"  # pyproject's addopts already give -q and --import-mode=importlib

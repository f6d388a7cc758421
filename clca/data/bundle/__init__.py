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

One source has no pinned public copy that could be verified: the Inglehart–Welzel 2022 map points
(``culture/inglehart_welzel_2022.csv``). Its sha256 is pinned; a user who has the file passes it with
``--source inglehart_welzel_2022=PATH`` (or puts it in a mirror). Without it the pull builds everything
else and records the file as missing in the manifest; ``clca data status`` reports the gap.

Everything here is plain Python over bytes: the builders are pure functions (source bytes in, file bytes
out) so that tests can run them on small extracts of the real sources.

The package: :mod:`~clca.data.bundle.catalog` (terms, sources, products), :mod:`~clca.data.bundle.builders`
(the pure builders), :mod:`~clca.data.bundle.pull` (fetching, the manifest, the pull) and
:mod:`~clca.data.bundle.status` (``clca data status``). The bundle's file names belong to
:class:`clca.data.layout.DataBundle`, the cache locations to :mod:`clca.settings`; this package re-exports
the names callers use.
"""

from __future__ import annotations

from clca.data.bundle.builders import (
    SIMLLM_TRAIN_QIDS,
    country_distributions_jsonl,
    env_subsets_json,
    hofstede_csv,
    inglehart_welzel_csv,
    verbatim,
)
from clca.data.bundle.catalog import (
    HOFSTEDE_CITATION,
    HOFSTEDE_COMMIT,
    HOFSTEDE_REPO,
    IW_CITATION,
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
    Source,
    Terms,
    github_file,
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
    "HOFSTEDE_CITATION",
    "HOFSTEDE_COMMIT",
    "HOFSTEDE_REPO",
    "IW_CITATION",
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

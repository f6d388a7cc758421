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
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlparse

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from clca import __version__
from clca.errors import DataError
from clca.settings import CACHE_ENV, DATA_ENV, project_root

MANIFEST = "bundle_manifest.json"
MANIFEST_FORMAT = 1
README = "README.md"

Echo = Callable[[str], None]


# --------------------------------------------------------------------------------------------------------
# Where things live


def cache_root() -> Path:
    """``$CLCA_CACHE_DIR`` or ``~/.cache/clca`` (as :func:`clca.settings.cache_dir`, without creating it)."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "clca").expanduser()


def default_bundle_dir() -> Path:
    """Where ``clca data pull`` puts the bundle unless told otherwise: ``<cache>/data``."""
    return cache_root() / "data"


def download_cache_dir() -> Path:
    """The download cache: ``<cache>/downloads/<sha256>``, one file per verified source."""
    return cache_root() / "downloads"


def pulled_bundle_dir() -> Path | None:
    """The pulled bundle in the cache when it exists and has a manifest, else None."""
    d = default_bundle_dir()
    return d if (d / MANIFEST).is_file() else None


# --------------------------------------------------------------------------------------------------------
# Terms of use


class Terms(BaseModel):
    """The terms of use of one group of sources, printed once per pull and written into the bundle."""

    model_config = ConfigDict(frozen=True)

    name: str
    licence: str
    summary: str
    citations: tuple[str, ...]


WVS_CITATION = (
    "Haerpfer, C., Inglehart, R., Moreno, A., Welzel, C., Kizilova, K., Diez-Medrano J., M. Lagos, "
    "P. Norris, E. Ponarin & B. Puranen (eds.). 2022. World Values Survey: Round Seven - Country-Pooled "
    "Datafile Version 5.0. Madrid, Spain & Vienna, Austria: JD Systems Institute & WVSA Secretariat. "
    "doi:10.14281/18241.20"
)
SIMLLM_CITATION = (
    "Cao, Y., Liu, H., Arora, A., Augenstein, I., Röttger, P. & Hershcovich, D. 2025. Specializing Large "
    "Language Models to Simulate Survey Response Distributions for Global Populations. NAACL 2025."
)
WVB_CITATION = (
    "Zhao, W., Mondal, D., Tandon, N., Dillion, D., Gray, K. & Gu, Y. 2024. WorldValuesBench: A Large-Scale "
    "Benchmark Dataset for Multi-Cultural Value Awareness of Language Models. LREC-COLING 2024, "
    "pages 17696-17706."
)
SOTOPIA_CITATION = (
    "Zhou, X., Zhu, H., Mathur, L., Zhang, R., Yu, H., Qi, Z., Morency, L.-P., Bisk, Y., Fried, D., "
    "Neubig, G. & Sap, M. 2024. SOTOPIA: Interactive Evaluation for Social Intelligence in Language Agents. "
    "ICLR 2024."
)
SOTOPIA_PI_CITATION = (
    "Wang, R., Yu, H., Zhang, W., Qi, Z., Sap, M., Neubig, G., Bisk, Y. & Zhu, H. 2024. SOTOPIA-pi: "
    "Interactive Learning of Socially Intelligent Language Agents. ACL 2024."
)
HOFSTEDE_CITATION = (
    "Hofstede, G., Hofstede, G. J. & Minkov, M. 2010. Cultures and Organizations: Software of the Mind, "
    "3rd ed. McGraw-Hill. Data: geerthofstede.com, dimension data matrix, "
    "6-dimensions-for-website-2015-08-16.csv."
)
IW_CITATION = (
    "World Values Survey Association. 2023. The Inglehart-Welzel World Cultural Map - World Values "
    "Survey 7 (2023 version, data 2017-2022). www.worldvaluessurvey.org."
)

TERMS: dict[str, Terms] = {
    "wvs": Terms(
        name="World Values Survey wave 7 aggregates (SimLLMCultureDist) and WorldValuesBench metadata",
        licence="WVS terms: free for non-profit use with citation",
        summary=(
            "WVS data may be used for non-profit purposes only and must be cited; respondent-level WVS "
            "data may not be redistributed (none is fetched)."
        ),
        citations=(WVS_CITATION, SIMLLM_CITATION, WVB_CITATION),
    ),
    "sotopia": Terms(
        name="Sotopia scenarios, characters, relationships and combinations",
        licence="CC-BY-SA-4.0",
        summary="Attribute Sotopia; derived scenario files you publish must carry the same licence.",
        citations=(SOTOPIA_CITATION,),
    ),
    "sotopia_pi": Terms(
        name="Sotopia-pi inspirational prompts and environment subsets",
        licence="Apache-2.0",
        summary="Keep the licence and attribution when redistributing.",
        citations=(SOTOPIA_PI_CITATION, SOTOPIA_CITATION),
    ),
    "hofstede": Terms(
        name="Hofstede's six dimensions (2015 release)",
        licence="free for research; cite the source",
        summary="Cite Hofstede's dimension data when you use the scores.",
        citations=(HOFSTEDE_CITATION,),
    ),
    "inglehart_welzel": Terms(
        name="Inglehart-Welzel cultural map points (2022)",
        licence="WVS terms: free for non-profit use with citation",
        summary="Cite the World Values Survey Association's cultural map.",
        citations=(IW_CITATION, WVS_CITATION),
    ),
}


# --------------------------------------------------------------------------------------------------------
# The sources table


class Source(BaseModel):
    """One source file: where it is published (pinned), its size and sha256, its terms, its mirror path."""

    model_config = ConfigDict(frozen=True)

    key: str
    url: str | None = Field(description="pinned public download URL; None when no pinned copy is known")
    mirror_path: str = Field(description="the file's path relative to a --mirror base")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=0)
    terms: str
    repo: str | None = None
    commit: str | None = Field(default=None, pattern=r"^[0-9a-f]{40}$")
    path: str | None = None
    note: str = ""


def github_file(
    key: str, repo: str, commit: str, path: str, *, sha256: str, size: int, terms: str, note: str = ""
) -> Source:
    """A file of a public GitHub repository at a full commit hash (raw URL; mirror ``repo/commit/path``)."""
    return Source(
        key=key,
        url=f"https://raw.githubusercontent.com/{repo}/{commit}/{path}",
        mirror_path=f"{repo}/{commit}/{path}",
        sha256=sha256,
        size=size,
        terms=terms,
        repo=repo,
        commit=commit,
        path=path,
        note=note,
    )


def unpinned_file(key: str, filename: str, *, sha256: str, size: int, terms: str, note: str) -> Source:
    """A source with no pinned public copy: only a mirror or ``--source KEY=PATH`` can supply it."""
    return Source(
        key=key,
        url=None,
        mirror_path=f"_unpinned/{key}/{filename}",
        sha256=sha256,
        size=size,
        terms=terms,
        note=note,
    )


WVB_REPO, WVB_COMMIT = "Demon702/WorldValuesBench", "635db7455e2c656978929210eba984bc09ddd659"
SIMLLM_REPO, SIMLLM_COMMIT = "yongcaoplus/SimLLMCultureDist", "402ee0b350983fd665e6668d770c7a687c5669a6"
SOTOPIA_SPACE_REPO, SOTOPIA_SPACE_COMMIT = (
    "sotopia-lab/sotopia-space",
    "12c13d807a62ce523ff87afefacb307b277b1604",
)
SOTOPIA_PI_REPO, SOTOPIA_PI_COMMIT = "sotopia-lab/sotopia-pi", "245fa7bbfc229a1e0f1aa3e79fa3cd26cad7b3bd"
HOFSTEDE_REPO, HOFSTEDE_COMMIT = "HoaMacDanh/GEO", "2f17b10973b940709e575f5d7ce37572399570b4"

#: Every source file of the bundle. Each sha256 and size was computed from the file at the pinned commit.
SOURCES: tuple[Source, ...] = (
    github_file(
        "wvb_question_metadata",
        WVB_REPO,
        WVB_COMMIT,
        "dataset_construction/question_metadata.json",
        sha256="338b49bfb22bbf45d3c13d8fd16a9ba307a632f820b2f0ff3f1eba996de1ed48",
        size=109116,
        terms="wvs",
    ),
    github_file(
        "wvb_codebook",
        WVB_REPO,
        WVB_COMMIT,
        "dataset_construction/codebook.json",
        sha256="28636cdc6bf0103895ab2faa09c391fdee2da52505f5362ee47f90223845e85e",
        size=733382,
        terms="wvs",
    ),
    github_file(
        "wvb_answer_adjustment",
        WVB_REPO,
        WVB_COMMIT,
        "dataset_construction/answer_adjustment.json",
        sha256="4c26cbb279207811f2a19d180163bef1c0092cf8be39e70a71e0eddff9a08467",
        size=621,
        terms="wvs",
    ),
    github_file(
        "simllm_train",
        SIMLLM_REPO,
        SIMLLM_COMMIT,
        "llama_recipes/datasets/custom_dataset.json",
        sha256="54add2f95348beae41ff798ba94181639dab0622c0b8e791caa8443fc5ee5018",
        size=3474004,
        terms="wvs",
        note="WVS7 v5.0 answer shares per country, Q1-Q163 (the project's training split)",
    ),
    github_file(
        "simllm_valid",
        SIMLLM_REPO,
        SIMLLM_COMMIT,
        "dataset/sft_wvs_valid.json",
        sha256="a52d446a1d3bffa977d55cc099e2bbe8eb2aec6d0fa0cf3afa965435729a8ad9",
        size=1402737,
        terms="wvs",
        note="WVS7 v5.0 answer shares per country, Q164-Q198 (the project's validation split)",
    ),
    github_file(
        "sotopia_environment_profiles",
        SOTOPIA_SPACE_REPO,
        SOTOPIA_SPACE_COMMIT,
        "profiles/environment_profiles.jsonl",
        sha256="b75de0c5b1b951ebeb66eb223ab3eec996caa890263a0bcd48ce2d9f4ce3e109",
        size=94093,
        terms="sotopia",
    ),
    github_file(
        "sotopia_agent_profiles",
        SOTOPIA_SPACE_REPO,
        SOTOPIA_SPACE_COMMIT,
        "profiles/agent_profiles.jsonl",
        sha256="1f2f74c07fd9105242c7f2a951d5378f52cd03a6df113f6020edb90d31202f1b",
        size=32119,
        terms="sotopia",
    ),
    github_file(
        "sotopia_relationship_profiles",
        SOTOPIA_SPACE_REPO,
        SOTOPIA_SPACE_COMMIT,
        "profiles/relationship_profiles.jsonl",
        sha256="33cd50cc1fbe93b8b7010ce5047e767e3a1ead421e791fee2bb1b9b2073327a2",
        size=65223,
        terms="sotopia",
    ),
    github_file(
        "sotopia_env_agent_combo_storages",
        SOTOPIA_SPACE_REPO,
        SOTOPIA_SPACE_COMMIT,
        "profiles/env_agent_combo_storages.jsonl",
        sha256="46d5858322e8c8266c4aabc45e3ca5a6d8f91df0fc6f167b10adb5b1477a4815",
        size=71100,
        terms="sotopia",
    ),
    github_file(
        "sotopia_pi_used_prompt",
        SOTOPIA_PI_REPO,
        SOTOPIA_PI_COMMIT,
        "data_generate/env_files/used_prompt.csv",
        sha256="23a54f58547cc27ea77146ce25c45bbe3535401cd04bc435b3d3e1825caebef1",
        size=81690,
        terms="sotopia_pi",
    ),
    github_file(
        "sotopia_pi_used_env",
        SOTOPIA_PI_REPO,
        SOTOPIA_PI_COMMIT,
        "data_generate/env_files/used_env.json",
        sha256="593d5fc1dae6826030d88ce0734e17cf87c39e1efc37e253e9658f390e6fe826",
        size=19747,
        terms="sotopia_pi",
    ),
    github_file(
        "hofstede_2015",
        HOFSTEDE_REPO,
        HOFSTEDE_COMMIT,
        "6-dimensions-for-website-2015-08-16.csv",
        sha256="71bff58cf610ec44b870d5aa4b06bb36e3a573860d513ff802488764d6e029a6",
        size=4267,
        terms="hofstede",
        note=(
            "a public GitHub copy (first upload, unedited) of geerthofstede.com's "
            "6-dimensions-for-website-2015-08-16.csv; geerthofstede.com itself has no pinned version"
        ),
    ),
    unpinned_file(
        "inglehart_welzel_2022",
        "inglehart_welzel_2022.csv",
        sha256="b8f580a27d9c052e7fcff2f45d9c05cdf88442cef13f8d84c9c8c50ee8e15c71",
        size=3043,
        terms="inglehart_welzel",
        note=(
            "no pinned public copy is known: the World Values Survey Association publishes the 2022 map "
            "points as a figure; supply the file with --source inglehart_welzel_2022=PATH"
        ),
    ),
)


# --------------------------------------------------------------------------------------------------------
# Builders: source bytes in, bundle file bytes out


def verbatim(data: bytes) -> bytes:
    """The source file unchanged (its sha256 is already checked against the pinned one)."""
    return data


def hofstede_csv(raw: bytes) -> bytes:
    """``culture/hofstede_2015.csv`` from geerthofstede.com's ``6-dimensions-for-website-2015-08-16.csv``.

    The published file is ``;``-separated with CRLF line ends; the bundle's copy is the same text with LF
    line ends (header ``ctr;country;pdi;idv;mas;uai;ltowvs;ivr``, missing values ``#NULL!``). Nothing else
    changes: same rows, same order, same values.
    """
    text = raw.decode("utf-8").replace("\r\n", "\n")
    lines = text.split("\n")
    header = "ctr;country;pdi;idv;mas;uai;ltowvs;ivr"
    if lines[0] != header:
        raise DataError(
            f"the Hofstede file starts with {lines[0][:60]!r}, not {header!r}.",
            fix="use the pinned 2015-08-16 release (see docs/data.md).",
        )
    for lineno, line in enumerate(lines[1:], 2):
        if line and line.count(";") != 7:
            raise DataError(f"the Hofstede file, line {lineno}: expected 8 ';'-separated fields.")
    return text.encode("utf-8") if text.endswith("\n") else (text + "\n").encode("utf-8")


def inglehart_welzel_csv(raw: bytes) -> bytes:
    """``culture/inglehart_welzel_2022.csv``: the map points file itself, after a format check.

    Checks the header ``iso3,name,trad_sec,surv_self`` and that both coordinates parse as numbers on every
    row; the bytes are kept as they are (the pinned sha256 already fixes the content).
    """
    lines = raw.decode("utf-8").splitlines()
    if not lines or lines[0] != "iso3,name,trad_sec,surv_self":
        raise DataError(
            "the Inglehart-Welzel file does not start with the header iso3,name,trad_sec,surv_self."
        )
    for lineno, line in enumerate(lines[1:], 2):
        parts = line.split(",")
        try:
            if len(parts) != 4:
                raise ValueError
            float(parts[2]), float(parts[3])
        except ValueError:
            raise DataError(f"the Inglehart-Welzel file, line {lineno}: expected iso3,name,x,y.") from None
    return raw


def env_subsets_json(used_env: bytes) -> bytes:
    """``sotopia/env_subsets.json`` from Sotopia-pi's ``data_generate/env_files/used_env.json``.

    Keeps the two subsets that describe Sotopia itself, ``sotopia_env`` (all 90 scenario ids) and
    ``sotopia_hard_env`` (the 14 "hard" ids), in that order and unchanged, and drops Sotopia-pi's own
    training/dev rounds (``SFT-round-1``, ``selftrain-round-*`` ...). Written as ``json.dumps(..., indent=1)``
    without a final newline.
    """
    try:
        d = json.loads(used_env)
        out = {k: [str(x) for x in d[k]] for k in ("sotopia_env", "sotopia_hard_env")}
    except (ValueError, KeyError, TypeError):
        raise DataError("used_env.json has no sotopia_env / sotopia_hard_env id lists.") from None
    return json.dumps(out, indent=1).encode("utf-8")


#: SimLLMCultureDist's training split covers Q1-Q163 without Q82 and Q94-Q105 (``construct_sft_data.py``:
#: ``Q_1 = [1, 164]`` and ``exclude_ques = [82, 223] + list(range(94, 106))``); the validation split is
#: Q164-Q198 and carries its question ids.
SIMLLM_TRAIN_QIDS: tuple[int, ...] = tuple(q for q in range(1, 164) if q != 82 and not 94 <= q <= 105)

_INSTRUCTION = re.compile(r"How would someone from (.+) answer the following question:\n\n")
_QUESTION_SUFFIX = " \nHere are the options: \n"
_SHARE = re.compile(r"(\d+(?:\.\d+)?)% of people select option ([A-Z])")
#: construct_sft_data.py's ``num2alpha``: answer code 1..10 -> A..J, code 0 ("hard to say") -> X.
_LETTER_CODE: dict[str, int] = {**{chr(ord("A") + i): i + 1 for i in range(10)}, "X": 0}
#: Country names of SimLLMCultureDist (the WVS ``B_COUNTRY`` labels) that the codebook's
#: ``B_COUNTRY_ALPHA`` list spells differently ("Macao", "Russian Federation") or lacks (Hong Kong).
_ISO3_FIXES: dict[str, str] = {"Hong Kong SAR": "HKG", "Macao SAR": "MAC", "Russia": "RUS"}
_SOURCE_LABEL = {"train": "train(custom_dataset.json)", "valid": "valid(sft_wvs_valid.json)"}


def _country(instruction: object, where: str) -> str:
    m = _INSTRUCTION.fullmatch(instruction) if isinstance(instruction, str) else None
    if m is None:
        raise DataError(f"{where}: unexpected instruction {str(instruction)[:60]!r}.")
    return m.group(1)


def _question_text(text: object, where: str) -> str:
    if not isinstance(text, str) or not text.endswith(_QUESTION_SUFFIX):
        raise DataError(f"{where}: the question does not end with {_QUESTION_SUFFIX!r}.")
    return text[: -len(_QUESTION_SUFFIX)]


def _train_shares(output: object, where: str) -> dict[str, float]:
    """``"89.54% of people select option A, 9.66% of people select option B, ..."`` -> {letter: percent}."""
    if not isinstance(output, str):
        raise DataError(f"{where}: the output is not a string.")
    shares: dict[str, float] = {}
    for part in output.split(", "):
        m = _SHARE.fullmatch(part)
        if m is None or m.group(2) in shares:
            raise DataError(f"{where}: cannot read {part[:60]!r} as 'P% of people select option L'.")
        shares[m.group(2)] = float(m.group(1))
    return shares


def _train_qids(blocks: Mapping[str, list[dict[str, Any]]], train_qids: Sequence[int]) -> dict[str, int]:
    """Question text -> question number for the training split, which carries no ids.

    The split lists, per country, the questions of ``train_qids`` in increasing order; a country leaves out
    the questions it has no answers for. Countries that answer all of them fix each text's number by
    position; every text must get exactly one number.
    """
    table: dict[str, int] = {}
    complete = [b for b in blocks.values() if len(b) == len(train_qids)]
    if not complete:
        raise DataError(f"no country in the training split has all {len(train_qids)} questions.")
    for block in complete:
        for qid, rec in zip(train_qids, block, strict=True):
            if table.setdefault(rec["input"], qid) != qid:
                raise DataError(f"the training split gives one question text two numbers (Q{qid}).")
    if len(set(table.values())) != len(table):
        raise DataError("the training split gives two question texts one number.")
    return table


def country_distributions_jsonl(
    train: bytes,
    valid: bytes,
    codebook: bytes,
    question_metadata: bytes,
    *,
    train_qids: Sequence[int] = SIMLLM_TRAIN_QIDS,
) -> bytes:
    """``wvs7/country_distributions.jsonl`` from SimLLMCultureDist's WVS7 aggregates and WorldValuesBench.

    Inputs: SimLLMCultureDist's ``llama_recipes/datasets/custom_dataset.json`` (training split, Q1-Q163)
    and ``dataset/sft_wvs_valid.json`` (validation split, Q164-Q198), WorldValuesBench's ``codebook.json``
    and ``question_metadata.json``. One output row per (country, question), sorted by country name, then
    question number. For each source record:

    - ``country``: the name in "How would someone from <country> answer the following question:";
      ``iso3``: the codebook's ``B_COUNTRY_ALPHA`` code of that name (three names fixed by hand:
      Hong Kong SAR -> HKG, Macao SAR -> MAC, Russia -> RUS).
    - ``qid``: ``Q<id>`` from the validation record's ``id``; the training records carry no id, so the
      number comes from the text (:func:`_train_qids`: the split lists Q1-Q163 without Q82 and
      Q94-Q105 in order, countries without answers to a question skip it).
    - ``wvs_short_label``: the codebook's ``question`` for that id; ``question``: WorldValuesBench's
      prompt wording from ``question_metadata.json`` (null where it has none, e.g. Q42, Q83-Q93,
      Q152-Q157); ``simllm_question``: the record's ``input`` without its trailing
      ``" \\nHere are the options: \\n"``.
    - ``option_codes``: the codebook's non-negative answer codes, ascending; ``options``: their labels.
    - Shares: the training ``output`` "P% of people select option L, ..." or the validation
      ``options_dist`` {L: P}; letters map to codes A..J -> 1..10 and X -> 0. Every code must have a share
      and every share a code. ``raw_percent_sum`` = sum of the percentages (2 decimals); ``probs`` = each
      percentage divided by that sum, rounded to 6 decimals, in code order.
    - ``source``: ``train(custom_dataset.json)`` or ``valid(sft_wvs_valid.json)``.

    Each row is written with ``json.dumps`` (ASCII escapes, default separators) and a newline.
    """
    try:
        train_recs = json.loads(train)
        valid_recs = json.loads(valid)
        cb = json.loads(codebook)
        qm = json.loads(question_metadata)
        alpha = {str(v): str(k) for k, v in cb["B_COUNTRY_ALPHA"]["choices"].items()}
    except (ValueError, KeyError, TypeError, AttributeError):
        raise DataError(
            "the SimLLMCultureDist or WorldValuesBench files are not in their published format."
        ) from None
    if not isinstance(train_recs, list) or not isinstance(valid_recs, list):
        raise DataError("the SimLLMCultureDist splits are not JSON lists.")

    blocks: dict[str, list[dict[str, Any]]] = {}
    for i, rec in enumerate(train_recs):
        blocks.setdefault(_country(rec.get("instruction"), f"custom_dataset.json record {i}"), []).append(rec)
    text_qid = _train_qids(blocks, train_qids)

    rows: dict[tuple[str, int], dict[str, Any]] = {}

    def add(country: str, qid: int, text: str, shares: Mapping[str, float], split: str, where: str) -> None:
        key = f"Q{qid}"
        entry = cb.get(key)
        if not isinstance(entry, dict):
            raise DataError(f"{where}: {key} is not in the WorldValuesBench codebook.")
        choices = {int(c): str(label) for c, label in entry["choices"].items() if int(c) >= 0}
        codes = sorted(choices)
        try:
            by_code = {_LETTER_CODE[letter]: float(p) for letter, p in shares.items()}
        except KeyError as exc:
            raise DataError(f"{where}: unknown option letter {exc.args[0]!r}.") from None
        if set(by_code) != set(codes):
            raise DataError(
                f"{where}: shares for codes {sorted(by_code)}, the codebook has {codes} for {key}."
            )
        iso3 = _ISO3_FIXES.get(country) or alpha.get(country)
        if iso3 is None:
            raise DataError(f"{where}: no ISO3 code for country {country!r} in the codebook.")
        total = sum(by_code[c] for c in codes)
        if total <= 0:
            raise DataError(f"{where}: the shares sum to {total}.")
        if (country, qid) in rows:
            raise DataError(f"{where}: a second row for {country} {key}.")
        meta = qm.get(key)
        rows[(country, qid)] = {
            "country": country,
            "iso3": iso3,
            "qid": key,
            "wvs_short_label": entry["question"],
            "question": meta["question"] if isinstance(meta, dict) else None,
            "simllm_question": text,
            "option_codes": codes,
            "options": [choices[c] for c in codes],
            "probs": [round(by_code[c] / total, 6) for c in codes],
            "raw_percent_sum": round(total, 2),
            "source": _SOURCE_LABEL[split],
        }

    for country, block in blocks.items():
        last = 0
        for j, rec in enumerate(block):
            where = f"custom_dataset.json, {country} record {j}"
            qid = text_qid.get(rec["input"])
            if qid is None:
                raise DataError(f"{where}: a question text that no complete country has.")
            if qid <= last:
                raise DataError(f"{where}: Q{qid} after Q{last}; the split is not in question order.")
            last = qid
            text = _question_text(rec["input"], where)
            add(country, qid, text, _train_shares(rec.get("output"), where), "train", where)
    for i, rec in enumerate(valid_recs):
        where = f"sft_wvs_valid.json record {i}"
        try:
            qid = int(rec["id"])
            shares = {str(k): float(v) for k, v in rec["options_dist"].items()}
        except (KeyError, ValueError, TypeError, AttributeError):
            raise DataError(f"{where}: expected an id and an options_dist.") from None
        country = _country(rec.get("instruction"), where)
        add(country, qid, _question_text(rec.get("input"), where), shares, "valid", where)

    lines = [json.dumps(rows[k]) + "\n" for k in sorted(rows)]
    return "".join(lines).encode("utf-8")


@dataclass(frozen=True)
class Product:
    """One file of the bundle: its path, the sources it needs, and the builder (called with their bytes)."""

    file: str
    needs: tuple[str, ...]
    build: Callable[..., bytes]


#: The bundle's files, in the order they are built.
PRODUCTS: tuple[Product, ...] = (
    Product("wvs7/question_metadata.json", ("wvb_question_metadata",), verbatim),
    Product("wvs7/codebook.json", ("wvb_codebook",), verbatim),
    Product("wvs7/answer_adjustment.json", ("wvb_answer_adjustment",), verbatim),
    Product(
        "wvs7/country_distributions.jsonl",
        ("simllm_train", "simllm_valid", "wvb_codebook", "wvb_question_metadata"),
        country_distributions_jsonl,
    ),
    Product("sotopia/environment_profiles.jsonl", ("sotopia_environment_profiles",), verbatim),
    Product("sotopia/agent_profiles.jsonl", ("sotopia_agent_profiles",), verbatim),
    Product("sotopia/relationship_profiles.jsonl", ("sotopia_relationship_profiles",), verbatim),
    Product("sotopia/env_agent_combo_storages.jsonl", ("sotopia_env_agent_combo_storages",), verbatim),
    Product("sotopia/env_subsets.json", ("sotopia_pi_used_env",), env_subsets_json),
    Product("sotopia/sotopia_pi_inspirational_prompts.csv", ("sotopia_pi_used_prompt",), verbatim),
    Product("culture/hofstede_2015.csv", ("hofstede_2015",), hofstede_csv),
    Product("culture/inglehart_welzel_2022.csv", ("inglehart_welzel_2022",), inglehart_welzel_csv),
)


# --------------------------------------------------------------------------------------------------------
# The manifest


class ManifestSource(BaseModel):
    key: str
    url: str | None
    repo: str | None
    commit: str | None
    path: str | None
    mirror_path: str
    sha256: str
    size: int
    terms: str


class ManifestFile(BaseModel):
    sha256: str
    size: int
    sources: list[str]


class MissingFile(BaseModel):
    file: str
    sources: list[str]
    reason: str


class Manifest(BaseModel):
    """``bundle_manifest.json``: what the bundle was built from and the sha256 of every built file."""

    format: int = MANIFEST_FORMAT
    clca_version: str
    created: str
    sources: list[ManifestSource]
    files: dict[str, ManifestFile]
    missing: list[MissingFile] = Field(default_factory=list)


def read_manifest(bundle: Path) -> Manifest | None:
    """The bundle's manifest, None when it has none; a one-line DataError when it is unreadable."""
    path = bundle / MANIFEST
    if not path.is_file():
        return None
    try:
        return Manifest.model_validate_json(path.read_bytes())
    except (ValidationError, ValueError):
        raise DataError(
            f"{path} is not a valid bundle manifest.", fix="rebuild the bundle with `clca data pull --force`."
        ) from None


# --------------------------------------------------------------------------------------------------------
# Fetching


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _is_http(location: str) -> bool:
    return location.startswith(("http://", "https://"))


def _local_path(location: str) -> Path:
    if location.startswith("file://"):
        return Path(unquote(urlparse(location).path))
    return Path(location).expanduser()


def source_location(source: Source, mirror: str | None, local: Mapping[str, Path]) -> str | Path | None:
    """Where to read ``source`` from: a ``--source`` file, the mirror, or its pinned URL (None: nowhere)."""
    if source.key in local:
        return local[source.key]
    if mirror:
        if _is_http(mirror):
            return f"{mirror.rstrip('/')}/{source.mirror_path}"
        return _local_path(mirror) / source.mirror_path
    return source.url


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def _download(url: str) -> bytes | None:
    """The body at ``url``; None for a 404; a one-line DataError for any other failure."""
    import httpx

    try:
        with httpx.Client(follow_redirects=True, timeout=httpx.Timeout(60.0, connect=15.0)) as client:
            resp = client.get(url)
            if resp.status_code == 404:
                return None
            resp.raise_for_status()
            return resp.content
    except httpx.HTTPError as exc:
        raise DataError(
            f"could not download {url}: {_first_line(exc)}.",
            fix="check the network, or use --mirror, or point --data-dir or CLCA_DATA_DIR at an existing bundle.",
        ) from None


def _read(location: str | Path) -> bytes | None:
    """The bytes at a URL or path; None when there is no such file."""
    if isinstance(location, str) and _is_http(location):
        return _download(location)
    path = location if isinstance(location, Path) else _local_path(location)
    try:
        return path.read_bytes()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None
    except OSError as exc:
        raise DataError(f"cannot read {path}: {_first_line(exc)}.") from None


FetchHow = Literal["cache", "downloaded", "read", "unavailable"]


def fetch_source(
    source: Source, *, mirror: str | None, local: Mapping[str, Path], cache: Path
) -> tuple[bytes | None, FetchHow]:
    """The verified bytes of ``source`` and how they were had: from the download cache, downloaded over
    http(s), or read from a local file (a mirror folder, ``file://`` or ``--source``).

    A cached copy is used when its sha256 still matches (unless the source is given in ``local``). Otherwise the file is read from
    :func:`source_location` and its sha256 checked: a mismatch is a one-line DataError and nothing is
    stored; a match is stored in the cache under its sha256. A source with no pinned URL that is in neither
    ``local`` nor the mirror gives ``(None, "unavailable")``; any other missing file is an error.
    """
    cached = cache / source.sha256
    if cached.is_file() and source.key not in local:  # a file named with --source is always checked
        hit = cached.read_bytes()
        if sha256_bytes(hit) == source.sha256:
            return hit, "cache"
        cached.unlink(missing_ok=True)  # a damaged cache entry: fetch again
    location = source_location(source, mirror, local)
    if location is None:
        return None, "unavailable"
    data = _read(location)
    if data is None:
        if source.url is None and source.key not in local:
            return None, "unavailable"
        raise DataError(
            f"{source.key}: no file at {location}.",
            fix=(
                f"a mirror must hold each source at <mirror>/{source.mirror_path} (see docs/data.md)."
                if mirror and source.key not in local
                else "check the path or URL."
            ),
        )
    digest = sha256_bytes(data)
    if digest != source.sha256:
        raise DataError(
            f"checksum mismatch for {source.key} from {location}: sha256 {digest}, expected {source.sha256}.",
            fix="that file is not the pinned version; fetch it from its pinned source (see docs/data.md).",
        )
    _write_atomic(cached, data)
    return data, "downloaded" if isinstance(location, str) and _is_http(location) else "read"


# --------------------------------------------------------------------------------------------------------
# The pull


class PullResult(BaseModel):
    """What a pull did: where the bundle is, what was built, what is missing, how sources were had."""

    dest: Path
    already: bool = False
    built: list[str] = Field(default_factory=list)
    missing: list[MissingFile] = Field(default_factory=list)
    fetched: list[str] = Field(default_factory=list)
    from_cache: list[str] = Field(default_factory=list)


def terms_text(sources: Sequence[Source]) -> list[str]:
    """The terms of the given sources, one paragraph per terms group (in first-use order)."""
    out: list[str] = []
    seen: list[str] = []
    for s in sources:
        if s.terms not in seen:
            seen.append(s.terms)
    for key in seen:
        t = TERMS[key]
        keys = ", ".join(s.key for s in sources if s.terms == key)
        out.append(f"- {t.name} ({keys}): {t.licence}. {t.summary}")
        out.extend(f"    cite: {c}" for c in t.citations)
    return out


def _readme(manifest: Manifest, sources: Sequence[Source]) -> bytes:
    lines = [
        "# clca data bundle",
        "",
        f"Built by `clca data pull` (clca {manifest.clca_version}) on {manifest.created} from pinned public",
        f"sources; `{MANIFEST}` lists each source (URL, commit, sha256) and the sha256 of each file.",
        "`clca data status` checks them. The files are described in clca's docs/data.md.",
        "",
        "## Terms of use and citations",
        "",
        *terms_text(sources),
    ]
    if manifest.missing:
        lines += ["", "## Not built", ""]
        lines += [f"- {m.file}: {m.reason}" for m in manifest.missing]
    return ("\n".join(lines) + "\n").encode("utf-8")


def _clean_partials(dest: Path) -> None:
    for leftover in dest.parent.glob(f".{dest.name}.partial-*"):
        shutil.rmtree(leftover, ignore_errors=True)


def _swap_into_place(tmp: Path, dest: Path) -> None:
    """Rename the finished ``tmp`` to ``dest``, replacing an older bundle there."""
    if not dest.exists():
        tmp.rename(dest)
        return
    old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
    shutil.rmtree(old, ignore_errors=True)
    dest.rename(old)
    try:
        tmp.rename(dest)
    except BaseException:
        old.rename(dest)
        raise
    shutil.rmtree(old, ignore_errors=True)


def pull(
    dest: Path | None = None,
    *,
    mirror: str | None = None,
    local: Mapping[str, Path] | None = None,
    force: bool = False,
    sources: Sequence[Source] = SOURCES,
    products: Sequence[Product] = PRODUCTS,
    cache: Path | None = None,
    echo: Echo = print,
) -> PullResult:
    """Fetch, verify and build the bundle into ``dest`` (default :func:`default_bundle_dir`).

    ``sources`` and ``products`` default to the pinned tables; tests pass their own (small extracts with
    their own sha256). ``local`` maps source keys to files on disk (``--source KEY=PATH``). A bundle with
    a manifest already at ``dest`` is kept unless ``force``; a non-empty folder without a manifest is never
    replaced. Sources are all fetched (and cached) first, then the files are built in a hidden folder
    beside ``dest`` that replaces ``dest`` only when complete; on any error the folder is removed.
    """
    dest = (dest or default_bundle_dir()).expanduser().absolute()
    cache = cache or download_cache_dir()
    local = dict(local or {})
    by_key = {s.key: s for s in sources}
    unknown = sorted(set(local) - set(by_key))
    if unknown:
        raise DataError(
            f"--source names unknown source(s) {', '.join(unknown)}.",
            fix=f"use one of: {', '.join(by_key)}.",
        )
    for p in products:
        for k in p.needs:
            if k not in by_key:
                raise ValueError(f"product {p.file} needs unknown source {k!r}")

    if dest.exists() and not dest.is_dir():
        raise DataError(f"{dest} exists and is not a folder.", fix="choose another --to.")
    if (dest / MANIFEST).is_file() and not force:
        echo(f"a pulled bundle is already at {dest}; `clca data pull --force` rebuilds it.")
        return PullResult(dest=dest, already=True)
    if dest.is_dir() and not (dest / MANIFEST).is_file() and any(dest.iterdir()):
        raise DataError(
            f"{dest} is not empty and holds no pulled bundle ({MANIFEST}); it is left alone.",
            fix="choose another --to, or empty that folder.",
        )

    echo("Terms of the data sources (by pulling you agree to use them accordingly):")
    for line in terms_text(sources):
        echo(line)

    result = PullResult(dest=dest)
    data: dict[str, bytes] = {}
    for s in sources:
        got, how = fetch_source(s, mirror=mirror, local=local, cache=cache)
        if got is None:
            continue
        data[s.key] = got
        (result.from_cache if how == "cache" else result.fetched).append(s.key)
        where = "in the download cache" if how == "cache" else f"{how} {source_location(s, mirror, local)}"
        echo(f"  {s.key}: {where}, sha256 ok")

    dest.parent.mkdir(parents=True, exist_ok=True)
    _clean_partials(dest)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.partial-", dir=dest.parent))
    umask = os.umask(0o022)
    os.umask(umask)
    tmp.chmod(0o777 & ~umask)  # mkdtemp makes it private; the bundle is an ordinary folder
    try:
        files: dict[str, ManifestFile] = {}
        for p in products:
            absent = [k for k in p.needs if k not in data]
            if absent:
                notes = "; ".join(by_key[k].note or f"{k} is not available" for k in absent)
                result.missing.append(MissingFile(file=p.file, sources=list(p.needs), reason=notes))
                continue
            try:
                out = p.build(*(data[k] for k in p.needs))
            except DataError:
                raise
            except Exception as exc:
                raise DataError(f"building {p.file} failed: {_first_line(exc)}.") from exc
            target = tmp / p.file
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(out)
            files[p.file] = ManifestFile(sha256=sha256_bytes(out), size=len(out), sources=list(p.needs))
            result.built.append(p.file)
        manifest = Manifest(
            clca_version=__version__,
            created=datetime.now(UTC).isoformat(timespec="seconds"),
            sources=[
                ManifestSource(**s.model_dump(include=set(ManifestSource.model_fields))) for s in sources
            ],
            files=files,
            missing=result.missing,
        )
        readme = _readme(manifest, sources)
        (tmp / README).write_bytes(readme)
        manifest.files[README] = ManifestFile(sha256=sha256_bytes(readme), size=len(readme), sources=[])
        (tmp / MANIFEST).write_text(manifest.model_dump_json(indent=2) + "\n", encoding="utf-8")
        _swap_into_place(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return result


# --------------------------------------------------------------------------------------------------------
# Status


class FileCheck(BaseModel):
    """One file of a bundle: its sha256 now and, with a manifest, the recorded one."""

    path: str
    sha256: str | None
    expected: str | None = None
    state: Literal["ok", "changed", "missing", "unlisted", "unchecked"]


class BundleStatus(BaseModel):
    """The outcome of :func:`bundle_status`."""

    path: Path
    origin: str
    manifest: Manifest | None
    files: list[FileCheck]

    @property
    def problems(self) -> list[FileCheck]:
        return [f for f in self.files if f.state in ("changed", "missing")]


def describe_origin(path: Path) -> str:
    """Which setting the bundle at ``path`` comes from, in words (for ``clca data status``)."""
    p = path.expanduser().absolute()
    env = os.environ.get(DATA_ENV)
    if env and Path(env).expanduser().absolute() == p:
        return f"the {DATA_ENV} environment variable (or --data-dir)"
    pulled = pulled_bundle_dir()
    if pulled is not None and pulled.absolute() == p:
        return "the bundle pulled by `clca data pull` (in the cache)"
    if (project_root().parent / "shared" / "data").absolute() == p:
        return "the shared bundle ../shared/data beside the checkout"
    return "the --data-dir option"


def bundle_status(path: Path, origin: str | None = None) -> BundleStatus:
    """Check the bundle at ``path`` against its manifest (or, without one, list its files with sha256)."""
    manifest = read_manifest(path)
    present = sorted(
        p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file() and p.name != MANIFEST
    )
    checks: list[FileCheck] = []
    if manifest is None:
        checks = [FileCheck(path=r, sha256=sha256_file(path / r), state="unchecked") for r in present]
    else:
        for rel, rec in sorted(manifest.files.items()):
            f = path / rel
            if not f.is_file():
                checks.append(FileCheck(path=rel, sha256=None, expected=rec.sha256, state="missing"))
                continue
            digest = sha256_file(f)
            state: Literal["ok", "changed"] = "ok" if digest == rec.sha256 else "changed"
            checks.append(FileCheck(path=rel, sha256=digest, expected=rec.sha256, state=state))
        checks += [
            FileCheck(path=r, sha256=sha256_file(path / r), state="unlisted")
            for r in present
            if r not in manifest.files
        ]
    return BundleStatus(path=path, origin=origin or describe_origin(path), manifest=manifest, files=checks)


def status_lines(st: BundleStatus) -> list[str]:
    """``clca data status`` output for a :class:`BundleStatus`."""
    lines = [f"bundle: {st.path}", f"from: {st.origin}"]
    m = st.manifest
    if m is None:
        lines.append(
            f"manifest: none ({MANIFEST} is written by `clca data pull`), so the checksums cannot be "
            f"checked; {len(st.files)} files and their sha256:"
        )
        lines += [f"  {f.sha256}  {f.path}" for f in st.files]
        return lines
    listed = [f for f in st.files if f.state != "unlisted"]
    lines.append(f"manifest: {MANIFEST}, built {m.created} by clca {m.clca_version}, {len(listed)} files")
    for s in m.sources:
        where = f"{s.repo}@{s.commit}:{s.path}" if s.repo else "no pinned public URL"
        lines.append(f"  source {s.key}: {where} sha256 {s.sha256}")
    if st.problems:
        lines.append(f"checksums: {len(st.problems)} of {len(listed)} files do not match the manifest:")
        for f in st.problems:
            got = "file is missing" if f.state == "missing" else f"sha256 {f.sha256}"
            lines.append(f"  {f.state}: {f.path} ({got}, expected {f.expected})")
    else:
        lines.append(f"checksums: all {len(listed)} files match the manifest")
    lines += [f"  not in the manifest: {f.path}" for f in st.files if f.state == "unlisted"]
    for miss in m.missing:
        lines.append(f"incomplete: {miss.file} was not built: {miss.reason}")
    return lines

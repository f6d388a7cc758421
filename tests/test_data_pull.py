"""``clca data pull`` / ``clca data status``: build the bundle offline from a mirror of source extracts.

``tests/fixtures/pull/`` is a mirror (``<owner>/<repo>/<commit>/<path>``) holding a few records of each real
source file in its own format. Their sha256 differ from the pinned full files, so the tests pass their own
sources table (:func:`fixture_sources`). Expected values were checked by hand against the rows of the real
bundle (``../shared/data``) for the same countries and questions. The three Integrated Values Surveys files of
the mirror are synthetic (invented values in the real format); the official 2022 Inglehart-Welzel points are
not in it (optional; tests supply the shared bundle's copy or made-up files).
"""

from __future__ import annotations

import csv
import http.server
import json
import os
import re
import shutil
import statistics
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from clca import settings
from clca.cli import main
from clca.culture import find_country
from clca.data import bundle
from clca.data.bundle import (
    MANIFEST,
    Product,
    Source,
    country_distributions_jsonl,
    pull,
    read_manifest,
)
from clca.errors import DataError

FIXTURES = Path(__file__).parent / "fixtures" / "pull"

#: sha256 and size of each fixture extract (the pinned table has those of the full files). The official
#: Inglehart-Welzel points (``inglehart_welzel_2022``, optional, checked by format) are not in the mirror.
FIXTURE_FILES: dict[str, tuple[str, int]] = {
    "wvb_question_metadata": ("9d6fafe9553c26f3ff720c3fa0e0b279798c1d492eb565a3ad4c05ab10180b98", 2469),
    "wvb_codebook": ("fdbdc1901c313be111bb4bd4feb8eaeef4113d2e8ceff070a975bfc6e204e3e8", 4596),
    "wvb_answer_adjustment": ("e8e945037af99be340b64632ce4e5c3055aa7831c524bff3d61766b24deb3f97", 168),
    "simllm_train": ("d8ebe7e7484e47bec4f3f50705681e92ab2ba07ee925066d27730a7f02ea833f", 11839),
    "simllm_valid": ("7c2229cb0f04ab311a5be6f28479c20ba53b41895258686f9c6165afe2d72389", 1801),
    "sotopia_environment_profiles": (
        "c197f874c9928b11bebdbad61dd0245cd137b353c8e287c41a9ccf7dbf460139",
        1519,
    ),
    "sotopia_agent_profiles": ("a48141ce49bf86eeb7c4e385ca3ed0a22c0f4a41313a541c93ee3301525e7d35", 4034),
    "sotopia_relationship_profiles": (
        "a3ed16ee77cc9cb9c48e51d6426a54c00ce6c16f1d89590dd564ddf58ea47a73",
        927,
    ),
    "sotopia_env_agent_combo_storages": (
        "2c5408a3c18d5c978d4208dd9a04be2b19e38eb75881832c14a9ab9bef7c600d",
        790,
    ),
    "sotopia_pi_used_prompt": ("22c836e25e684343d001ba05012c6235f7d54f60d8c8c434eaf66e5c647199e8", 282),
    "sotopia_pi_used_env": ("bda78dcf4f0ae6e2929e903ff4d9a76d395ee7d878088846ca02c0ad54bd5d7d", 354),
    "hofstede_2015": ("aa330d822b3a3e1d9c1c1c4cffefbc5c0051ad81d743708a11a4538616d7b81c", 288),
    # synthetic extracts (invented values, the real files' format)
    "ivs_tradagg": ("bec2659210faa945e86ae53f0b551f4436c02a9d7e4dbc50f82bed5bb7280214", 519),
    "ivs_survsagg": ("72d017aed0b0062a6b61ee8964117f8cba4d203466723d5bd6b7f9c029d89e67", 514),
    "ivs_geo_entities": ("91232182fa14a3456292df71b1eb2c39e1de11e7c74713d7b1859cee22f3a9f2", 287),
}
#: The questions of the training-split extract (the real split has Q1-Q163 without Q82, Q94-Q105).
TRAIN_QIDS = (1, 36, 42, 45, 119, 152)
MAP_FILE = "culture/inglehart_welzel.csv"
BUNDLE_FILES = [
    "README.md",
    "culture/hofstede_2015.csv",
    MAP_FILE,
    "sotopia/agent_profiles.jsonl",
    "sotopia/env_agent_combo_storages.jsonl",
    "sotopia/env_subsets.json",
    "sotopia/environment_profiles.jsonl",
    "sotopia/relationship_profiles.jsonl",
    "sotopia/sotopia_pi_inspirational_prompts.csv",
    "wvs7/answer_adjustment.json",
    "wvs7/codebook.json",
    "wvs7/country_distributions.jsonl",
    "wvs7/question_metadata.json",
]
#: The IVS edition built from the synthetic extracts: latest year 2017-2023 per geo, surv_self = -survsagg.
IVS_FIXTURE_MAP = (
    "iso3,name,trad_sec,surv_self\n"
    "AND,Andorra,0.7219,0.0\n"  # survsagg 0.00004: -0.0 is written 0.0
    "CHN,China,0.4821,-0.3302\n"  # 2018, not 2013
    "DEU,Germany,0.9733,2.0413\n"  # 2018, not 2017 (both in the window)
    "GBR,Great Britain,1.0346,2.1\n"  # 2022, not 2018 or 1990
    "JPN,Japan,1.8124,1.0292\n"
    "MEX,Mexico,-0.8842,0.1928\n"  # 2018: 2024 is past the window
    "NGA,Nigeria,-1.553,-1.2019\n"
    "NIR,Northern Ireland,0.3313,1.7713\n"
    "RUS,Russia,0.4103,-1.0129\n"  # russian_federation (2008) and germany_west (1990) are outside it
    "SWE,Sweden,1.3392,2.9513\n"
)


def fixture_sources(**wrong_sha: str) -> tuple[Source, ...]:
    """The pinned table (same URLs and mirror paths) with the fixture extracts' sha256 and sizes."""
    out = []
    for s in bundle.SOURCES:
        if s.key not in FIXTURE_FILES:  # the optional official points: accepted by format, not sha256
            out.append(s)
            continue
        sha, size = FIXTURE_FILES[s.key]
        out.append(s.model_copy(update={"sha256": wrong_sha.get(s.key, sha), "size": size}))
    return tuple(out)


def fixture_products() -> tuple[Product, ...]:
    """The pinned products, with the training split's question list of the extract."""
    build = partial(country_distributions_jsonl, train_qids=TRAIN_QIDS)
    return tuple(
        bundle.product(p.file, p.needs, build) if p.file == "wvs7/country_distributions.jsonl" else p
        for p in bundle.PRODUCTS
    )


def pull_fixtures(dest: Path, mirror: Path | str = FIXTURES, **kw: object) -> bundle.PullResult:
    lines: list[str] = []
    return pull(
        dest,
        mirror=str(mirror),
        sources=fixture_sources(),
        products=fixture_products(),
        echo=lines.append,
        **kw,  # type: ignore[arg-type]
    )


def files_under(d: Path) -> list[str]:
    return sorted(p.relative_to(d).as_posix() for p in d.rglob("*") if p.is_file())


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A private cache per test; no data-dir setting leaks in or out."""
    monkeypatch.setenv("CLCA_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("CLCA_DATA_DIR", raising=False)
    settings.set_data_dir(None)
    yield
    settings.set_data_dir(None)


@pytest.fixture()
def cli_tables(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the CLI (which uses the pinned tables) use the fixture tables."""
    monkeypatch.setattr(bundle, "SOURCES", fixture_sources())
    monkeypatch.setattr(bundle, "PRODUCTS", fixture_products())


# ---------------------------------------------------------------------------------------------------------
# What is built


def test_country_distributions_match_the_real_bundle_rows(tmp_path: Path, data_dir: Path) -> None:
    pull_fixtures(tmp_path / "b")
    rows = [
        json.loads(line)
        for line in (tmp_path / "b/wvs7/country_distributions.jsonl").read_text().splitlines()
    ]
    # every built row is the real bundle's row for that country and question, field for field
    real = {
        (r["country"], r["qid"]): r
        for r in map(json.loads, (data_dir / "wvs7/country_distributions.jsonl").open(encoding="utf-8"))
    }
    keys = [(r["country"], int(r["qid"][1:])) for r in rows]
    assert keys == sorted(keys)  # by country, then question number, as the builder writes them
    for r in rows:
        assert r == real[(r["country"], r["qid"])], (r["country"], r["qid"])
        assert list(r) == list(real[(r["country"], r["qid"])])
    assert {r["country"] for r in rows} == {"Andorra", "China", "Great Britain", "Iraq", "Russia"}
    # (country, iso3, qid, question is null, option_codes, probs, raw_percent_sum, source) as in ../shared/data
    expected = [
        ("Andorra", "AND", "Q1", False, [1, 2, 3, 4], [0.8954, 0.0966, 0.005, 0.003], 100.0, "train"),
        (
            "Andorra",
            "AND",
            "Q36",
            False,
            [1, 2, 3, 4, 5],
            [0.2843, 0.2248, 0.2984, 0.1159, 0.0766],
            100.0,
            "train",
        ),
        ("Andorra", "AND", "Q42", True, [1, 2, 3], [0.1175, 0.8503, 0.0322], 100.0, "train"),
        (
            "Andorra",
            "AND",
            "Q119",
            False,
            [0, 1, 2, 3, 4],
            [0.1585, 0.0662, 0.1815, 0.3581, 0.2357],
            100.0,
            "train",
        ),
        (
            "Andorra",
            "AND",
            "Q152",
            True,
            [1, 2, 3, 4],
            [0.625163, 0.022902, 0.29513, 0.056806],
            99.99,
            "train",
        ),
        (
            "Andorra",
            "AND",
            "Q164",
            False,
            [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
            [
                0.25502,
                0.095382,
                0.075301,
                0.053213,
                0.119478,
                0.057229,
                0.081325,
                0.10241,
                0.057229,
                0.103414,
            ],
            100.0,
            "valid",
        ),
        (
            "Andorra",
            "AND",
            "Q198",
            False,
            [1, 2, 3, 4],
            [0.041874, 0.08674, 0.127617, 0.743769],
            100.0,
            "valid",
        ),
        ("Iraq", "IRQ", "Q1", False, [1, 2, 3, 4], [0.9725, 0.0225, 0.005, 0.0], 100.0, "train"),
        ("Iraq", "IRQ", "Q42", True, [1, 2, 3], [0.2025, 0.6567, 0.1408], 100.0, "train"),
        (
            "Iraq",
            "IRQ",
            "Q119",
            False,
            [0, 1, 2, 3, 4],
            [0.090691, 0.262474, 0.278072, 0.214179, 0.154585],
            100.01,
            "train",
        ),
        ("Iraq", "IRQ", "Q152", True, [1, 2, 3, 4], [0.4867, 0.4183, 0.0483, 0.0467], 100.0, "train"),
        ("Russia", "RUS", "Q1", False, [1, 2, 3, 4], [0.8391, 0.1382, 0.0205, 0.0022], 100.0, "train"),
        (
            "Russia",
            "RUS",
            "Q119",
            False,
            [0, 1, 2, 3, 4],
            [0.129913, 0.066607, 0.308731, 0.372037, 0.122712],
            99.99,
            "train",
        ),
    ]
    got = [
        (
            r["country"],
            r["iso3"],
            r["qid"],
            r["question"] is None,
            r["option_codes"],
            r["probs"],
            r["raw_percent_sum"],
            r["source"].split("(")[0],
        )
        for r in rows
    ]
    assert [g for g in got if g[0] in ("Andorra", "Iraq", "Russia") and g[2] != "Q45"] == expected
    assert ("China", "CHN", "Q45", False, [1, 2, 3], "train") in [(*g[:4], g[4], g[7]) for g in got]
    andorra_q119 = {
        "country": "Andorra",
        "iso3": "AND",
        "qid": "Q119",
        "wvs_short_label": "Degree of agreement: On the whole, women are less corrupt than men",
        "question": "On a scale of 1 to 5, 1 meaning 'Strongly agree' and 5 meaning 'Strongly disagree', how "
        'strongly do you agree or disagree with the following statement: "on the whole, women are less '
        'corrupt than men"? ',
        "simllm_question": "Can you tell me how strongly you agree or disagree with the following statement: "
        '"on the whole, women are less corrupt than men"?',
        "option_codes": [0, 1, 2, 3, 4],
        "options": ["Hard to say", "Strongly agree", "Agree", "Disagree", "Strongly disagree"],
        "probs": [0.1585, 0.0662, 0.1815, 0.3581, 0.2357],
        "raw_percent_sum": 100.0,
        "source": "train(custom_dataset.json)",
    }
    by_key = {(r["country"], r["qid"]): r for r in rows}
    assert by_key[("Andorra", "Q119")] == andorra_q119
    assert list(by_key[("Andorra", "Q119")]) == list(andorra_q119)  # the bundle's field order
    q164 = by_key[("Andorra", "Q164")]
    assert q164["wvs_short_label"] == "Importance of God"
    assert q164["options"][0] == "Not at all important" and q164["options"][-1] == "Very important"
    assert q164["source"] == "valid(sft_wvs_valid.json)"
    assert q164["simllm_question"].startswith("How important is God in your life?")
    assert sum(q164["probs"]) == pytest.approx(1.0, abs=1e-5)


def test_other_files_are_built_as_the_bundle_describes(tmp_path: Path) -> None:
    result = pull_fixtures(tmp_path / "b")
    b = tmp_path / "b"
    assert files_under(b) == sorted([*BUNDLE_FILES, MANIFEST])
    assert result.missing == []
    src = {s.key: FIXTURES / s.mirror_path for s in bundle.SOURCES}
    for rel, key in [
        ("wvs7/codebook.json", "wvb_codebook"),
        ("wvs7/question_metadata.json", "wvb_question_metadata"),
        ("wvs7/answer_adjustment.json", "wvb_answer_adjustment"),
        ("sotopia/environment_profiles.jsonl", "sotopia_environment_profiles"),
        ("sotopia/agent_profiles.jsonl", "sotopia_agent_profiles"),
        ("sotopia/relationship_profiles.jsonl", "sotopia_relationship_profiles"),
        ("sotopia/env_agent_combo_storages.jsonl", "sotopia_env_agent_combo_storages"),
        ("sotopia/sotopia_pi_inspirational_prompts.csv", "sotopia_pi_used_prompt"),
    ]:
        assert (b / rel).read_bytes() == src[key].read_bytes(), rel
    # the map points: the IVS edition (no official points were supplied)
    assert (b / MAP_FILE).read_bytes() == IVS_FIXTURE_MAP.encode()
    assert result.editions == {MAP_FILE: "ivs-wave7"}
    # Hofstede: the same ';'-separated rows with LF instead of CRLF (rows as in ../shared/data)
    assert (b / "culture/hofstede_2015.csv").read_text().split("\n") == [
        "ctr;country;pdi;idv;mas;uai;ltowvs;ivr",
        "AFE;Africa East;64;27;41;52;32;40",
        "AFW;Africa West;77;20;46;54;9;78",
        "ALB;Albania;#NULL!;#NULL!;#NULL!;#NULL!;61;15",
        "CHI;China;80;20;66;30;87;24",
        "GBR;Great Britain;35;89;66;35;51;69",
        "KOR;Korea South;60;18;39;85;100;29",
        "USA;U.S.A.;40;91;62;46;26;68",
        "",
    ]
    # env_subsets: Sotopia's two subsets only, indent=1, no final newline (as ../shared/data)
    assert (b / "sotopia/env_subsets.json").read_text() == (
        '{\n "sotopia_env": [\n  "01H7VFHP1JEP91TTK5PEK39D2S",\n  "01H7VFHNH8A88C4XJ7X4PVAHV4",\n'
        '  "01H7VFHNR1RJKDZ9V9MDTJ1SJP"\n ],\n "sotopia_hard_env": [\n  "01H7VFHNV13MHN97GAH73E3KM8",\n'
        '  "01H7VFHN5WVC5HKKVBHZBA553R"\n ]\n}'
    )
    agent = json.loads((b / "sotopia/agent_profiles.jsonl").read_text().splitlines()[0])
    assert (agent["agent_id"], agent["first_name"], agent["last_name"], agent["age"], agent["mbti"]) == (
        "01H5TNE5PRCAF1CK5ERS5MVZ22",
        "Amara",
        "Hartley",
        29,
        "INFJ",
    )
    prompts = (b / "sotopia/sotopia_pi_inspirational_prompts.csv").read_text().splitlines()
    assert prompts[:2] == [
        "model|source|pk|prompt",
        "gpt-4-turbo|normbank|01HJPMD5KHA2JT3DNJ9ZGVPBT8|sit by the fire",
    ]


def test_manifest_records_sources_and_built_files(tmp_path: Path) -> None:
    pull_fixtures(tmp_path / "b")
    m = read_manifest(tmp_path / "b")
    assert m is not None and m.format == 1
    srcs = {s.key: s for s in m.sources}
    assert set(srcs) == {*FIXTURE_FILES, "inglehart_welzel_2022"}
    codebook = srcs["wvb_codebook"]
    assert codebook.url == (
        "https://raw.githubusercontent.com/Demon702/WorldValuesBench/635db7455e2c656978929210eba984bc09ddd659/"
        "dataset_construction/codebook.json"
    )
    assert codebook.commit == "635db7455e2c656978929210eba984bc09ddd659"
    assert codebook.sha256 == FIXTURE_FILES["wvb_codebook"][0]
    official = srcs["inglehart_welzel_2022"]
    assert official.url is None and not official.supplied and official.accept == "format"
    assert all(s.supplied and s.accept == "sha256" for k, s in srcs.items() if k != "inglehart_welzel_2022")
    assert sorted(m.files) == BUNDLE_FILES
    assert m.files[MAP_FILE].sources == ["ivs_tradagg", "ivs_survsagg", "ivs_geo_entities"]
    assert m.files[MAP_FILE].edition == "ivs-wave7"
    assert {k for k, f in m.files.items() if f.edition is not None} == {MAP_FILE}
    for rel, rec in m.files.items():
        assert rec.sha256 == bundle.sha256_file(tmp_path / "b" / rel), rel
    assert m.files["wvs7/country_distributions.jsonl"].sources == [
        "simllm_train",
        "simllm_valid",
        "wvb_codebook",
        "wvb_question_metadata",
    ]
    readme = (tmp_path / "b/README.md").read_text()
    for licence in ("CC-BY-SA-4.0", "Apache-2.0", "non-profit use with citation", "doi:10.14281/18241.20"):
        assert licence in readme
    for cite in ("European Values Study 2017", "Joint EVS/WVS 2017-2021", "open-numbers"):
        assert cite in readme
    assert f"`{MAP_FILE}`: edition ivs-wave7, Inglehart-Welzel points computed from the Integrated" in readme


def test_terms_are_printed_once_per_pull(tmp_path: Path) -> None:
    lines: list[str] = []
    pull(
        tmp_path / "b",
        mirror=str(FIXTURES),
        sources=fixture_sources(),
        products=fixture_products(),
        echo=lines.append,
    )
    text = "\n".join(lines)
    for licence in ("CC-BY-SA-4.0", "Apache-2.0", "free for research; cite the source"):
        assert text.count(licence) == 1, licence
    # WVS aggregates, the official Inglehart-Welzel points, the IVS aggregates
    assert text.count("non-profit use with citation") == 3
    assert text.count("Terms of the data sources") == 1


def test_pinned_table_is_consistent() -> None:
    keys = [s.key for s in bundle.SOURCES]
    assert len(keys) == len(set(keys))
    for s in bundle.SOURCES:
        assert s.terms in bundle.TERMS
        if s.url is not None:
            assert s.commit is not None and s.repo is not None and s.path is not None
            assert s.url == f"https://raw.githubusercontent.com/{s.repo}/{s.commit}/{s.path}"
            assert s.mirror_path == f"{s.repo}/{s.commit}/{s.path}"
    needs = {k for p in bundle.PRODUCTS for k in p.needs}
    assert needs == set(keys)
    assert sorted(p.file for p in bundle.PRODUCTS) == [f for f in BUNDLE_FILES if f != "README.md"]
    assert all(p.recipes for p in bundle.PRODUCTS)
    # only the optional official points lack a pinned URL, and only they are accepted by their format
    assert [s.key for s in bundle.SOURCES if s.url is None] == ["inglehart_welzel_2022"]
    assert [s.key for s in bundle.SOURCES if s.accept == "format"] == ["inglehart_welzel_2022"]
    ivs = {s.key: s for s in bundle.SOURCES if s.terms == "ivs"}
    assert sorted(ivs) == ["ivs_geo_entities", "ivs_survsagg", "ivs_tradagg"]
    assert {s.commit for s in ivs.values()} == {"4cfde16b97e85deeff056ca56af3cc3744f5b8dd"}
    assert {s.repo for s in ivs.values()} == {
        "open-numbers/ddf--open_numbers--integrated_values_surveys_indicators"
    }
    # the map file: the supplied official points first, else the IVS edition (a plain pull is complete)
    (iw,) = [p for p in bundle.PRODUCTS if p.file == MAP_FILE]
    assert [r.needs for r in iw.recipes] == [
        ("inglehart_welzel_2022",),
        ("ivs_tradagg", "ivs_survsagg", "ivs_geo_entities"),
    ]


# ---------------------------------------------------------------------------------------------------------
# Checksums, interruption, resumption


def test_checksum_mismatch_is_one_line_error_and_no_bundle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(bundle, "SOURCES", fixture_sources(wvb_codebook="0" * 64))
    monkeypatch.setattr(bundle, "PRODUCTS", fixture_products())
    dest = tmp_path / "out" / "bundle"
    dest.parent.mkdir()
    assert main(["data", "pull", "--to", str(dest), "--mirror", str(FIXTURES)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith("error: checksum mismatch for wvb_codebook from ")
    assert f"sha256 {FIXTURE_FILES['wvb_codebook'][0]}, expected {'0' * 64}" in err
    assert not dest.exists()
    assert not any(p.name.startswith(".bundle.") for p in dest.parent.iterdir())
    cache = tmp_path / "cache" / "downloads"
    assert not (cache / FIXTURE_FILES["wvb_codebook"][0]).exists()
    assert not (cache / ("0" * 64)).exists()


def test_failed_build_leaves_no_bundle_and_a_rerun_uses_the_downloads(tmp_path: Path) -> None:
    mirror = tmp_path / "mirror"
    shutil.copytree(FIXTURES, mirror)
    dest = tmp_path / "bundle"

    def boom(*_: bytes) -> bytes:
        raise RuntimeError("disk full")

    broken = (*fixture_products()[:-1], bundle.product(MAP_FILE, bundle.PRODUCTS[-1].recipes[-1].needs, boom))
    with pytest.raises(DataError, match=r"building culture/inglehart_welzel.csv failed: disk full"):
        pull(dest, mirror=str(mirror), sources=fixture_sources(), products=broken, echo=lambda _: None)
    assert not dest.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".bundle")] == []
    cached = {p.name for p in (tmp_path / "cache/downloads").iterdir()}
    assert cached == {sha for sha, _ in FIXTURE_FILES.values()}

    shutil.rmtree(mirror)  # the rerun cannot download anything: it must resume from the cache
    result = pull(
        dest, mirror=str(mirror), sources=fixture_sources(), products=fixture_products(), echo=lambda _: None
    )
    assert result.fetched == []
    assert sorted(result.from_cache) == sorted(FIXTURE_FILES)
    assert files_under(dest) == sorted([*BUNDLE_FILES, MANIFEST])


def test_missing_mirror_file_interrupts_the_pull_and_the_rerun_resumes(tmp_path: Path) -> None:
    mirror = tmp_path / "mirror"
    shutil.copytree(FIXTURES, mirror)
    hof = next(s for s in bundle.SOURCES if s.key == "hofstede_2015")
    moved = tmp_path / "hofstede.csv"
    (mirror / hof.mirror_path).rename(moved)
    dest = tmp_path / "bundle"
    with pytest.raises(
        DataError, match=r"hofstede_2015: no file at .*2f17b10973b940709e575f5d7ce37572399570b4"
    ):
        pull_fixtures(dest, mirror)
    assert not dest.exists()
    # everything before the missing file was verified and cached; the rerun fetches only the rest
    moved.rename(mirror / hof.mirror_path)
    result = pull_fixtures(dest, mirror)
    assert result.fetched == ["hofstede_2015", "ivs_tradagg", "ivs_survsagg", "ivs_geo_entities"]
    assert len(result.from_cache) == len(FIXTURE_FILES) - 4
    assert (dest / MANIFEST).is_file()


def test_damaged_cache_entry_is_fetched_again(tmp_path: Path) -> None:
    pull_fixtures(tmp_path / "b1")
    entry = tmp_path / "cache/downloads" / FIXTURE_FILES["simllm_valid"][0]
    entry.write_bytes(b"[]")
    result = pull_fixtures(tmp_path / "b2")
    assert result.fetched == ["simllm_valid"]
    assert bundle.sha256_file(entry) == FIXTURE_FILES["simllm_valid"][0]


def test_an_existing_bundle_is_kept_unless_forced(tmp_path: Path) -> None:
    dest = tmp_path / "b"
    pull_fixtures(dest)
    (dest / "wvs7/codebook.json").write_text("{}")
    assert pull_fixtures(dest).already
    assert (dest / "wvs7/codebook.json").read_text() == "{}"
    result = pull_fixtures(dest, force=True)
    assert not result.already and result.from_cache
    assert (dest / "wvs7/codebook.json").read_bytes() == (
        FIXTURES / bundle.SOURCES[1].mirror_path
    ).read_bytes()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".b.")] == []


def test_a_folder_that_is_not_a_bundle_is_never_replaced(tmp_path: Path) -> None:
    dest = tmp_path / "mine"
    dest.mkdir()
    (dest / "notes.txt").write_text("keep me")
    with pytest.raises(DataError, match="is not empty and holds no pulled bundle"):
        pull_fixtures(dest, force=True)
    assert (dest / "notes.txt").read_text() == "keep me"


def points_csv(rows: int = 30, *, extra: str = "", header: str = "iso3,name,trad_sec,surv_self") -> str:
    """A made-up map points file in the official file's format (codes AAX, ABX, ...; invented values)."""
    lines = [header]
    for i in range(rows):
        code = f"{chr(65 + i // 26)}{chr(65 + i % 26)}X"
        lines.append(f"{code},Country {i},{round(i / 10 - 1.5, 4)},{round(2 - i / 9, 4)}")
    return "\n".join(lines) + "\n" + extra


def test_official_points_are_optional_and_used_when_supplied(tmp_path: Path, data_dir: Path) -> None:
    official = data_dir / "culture/inglehart_welzel_2022.csv"  # the WVSA's 2022 points, as the user has them
    result = pull_fixtures(tmp_path / "b", local={"inglehart_welzel_2022": official})
    assert result.missing == [] and result.editions == {MAP_FILE: "wvsa-2022"}
    assert (tmp_path / "b" / MAP_FILE).read_bytes() == official.read_bytes()
    m = read_manifest(tmp_path / "b")
    assert m is not None and m.files[MAP_FILE].edition == "wvsa-2022"
    assert m.files[MAP_FILE].sources == ["inglehart_welzel_2022"]
    src = {s.key: s for s in m.sources}["inglehart_welzel_2022"]
    assert (src.sha256, src.size, src.supplied) == (
        bundle.sha256_file(official),
        official.stat().st_size,
        True,
    )
    assert src.sha256 == "b8f580a27d9c052e7fcff2f45d9c05cdf88442cef13f8d84c9c8c50ee8e15c71"

    # any file that passes the format check is accepted, whatever its sha256; the manifest records it as given
    mine = tmp_path / "mine.csv"
    mine.write_text(points_csv())
    mirror = tmp_path / "mirror"
    shutil.copytree(FIXTURES, mirror)
    unpinned = mirror / "_unpinned/inglehart_welzel_2022/inglehart_welzel_2022.csv"
    unpinned.parent.mkdir(parents=True)
    shutil.copy(mine, unpinned)
    result = pull_fixtures(tmp_path / "b2", mirror)
    assert result.editions == {MAP_FILE: "user"} and "inglehart_welzel_2022" in result.fetched
    assert (tmp_path / "b2" / MAP_FILE).read_bytes() == mine.read_bytes()
    m = read_manifest(tmp_path / "b2")
    assert m is not None
    src = {s.key: s for s in m.sources}["inglehart_welzel_2022"]
    assert (src.sha256, src.size) == (bundle.sha256_file(mine), mine.stat().st_size)

    # a supplied file is never kept in the download cache: the next plain pull builds the IVS edition
    assert not (tmp_path / "cache/downloads" / bundle.sha256_file(official)).exists()
    result = pull_fixtures(tmp_path / "b", force=True)
    assert result.editions == {MAP_FILE: "ivs-wave7"}
    m = read_manifest(tmp_path / "b")
    assert m is not None and not {s.key: s for s in m.sources}["inglehart_welzel_2022"].supplied


def test_supplied_points_with_crlf_and_bom_are_accepted_as_lf(tmp_path: Path) -> None:
    text = points_csv(31)
    raw = b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode()
    assert bundle.inglehart_welzel_csv(raw) == text.encode()


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (points_csv(header="iso,name,x,y"), "do not start with the header iso3,name,trad_sec,surv_self"),
        (points_csv(extra="gbr,Great Britain,0.4,2.3\n"), "line 32: 'gbr' is not an upper-case three-letter"),
        (points_csv(extra="GB,Great Britain,0.4,2.3\n"), "line 32: 'GB' is not an upper-case three-letter"),
        (points_csv(extra="AAX,Again,0.4,2.3\n"), "line 32: a second row for AAX"),
        (points_csv(extra="GBR,Great Britain,0.4,4.5\n"), r"line 32: surv_self 4.5 is outside \[-4, 4\]"),
        (points_csv(extra="GBR,Great Britain,-4.01,2\n"), r"line 32: trad_sec -4.01 is outside \[-4, 4\]"),
        (points_csv(extra="GBR,Great Britain,high,2\n"), "line 32: trad_sec 'high' is not a number"),
        (points_csv(extra="GBR, ,0.4,2\n"), "line 32: the name is empty"),
        (points_csv(extra="GBR,Great Britain,0.4\n"), "line 32: expected 4 fields"),
        (points_csv(29), "have 29 rows; a map needs at least 30"),
    ],
)
def test_supplied_points_that_fail_the_check_are_refused_in_one_line(
    tmp_path: Path, text: str, problem: str
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(text)
    with pytest.raises(DataError) as exc:
        pull_fixtures(tmp_path / "b", local={"inglehart_welzel_2022": bad})
    msg = str(exc.value)
    assert "\n" not in msg
    assert re.search(problem, msg), msg
    assert msg.startswith("the supplied Inglehart-Welzel points (inglehart_welzel_2022)")
    assert "Fix: supply the points as CSV with the header iso3,name,trad_sec,surv_self" in msg
    assert not (tmp_path / "b").exists()


def test_mirror_as_file_url_and_as_http_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pull_fixtures(tmp_path / "b1", FIXTURES.resolve().as_uri())
    assert (tmp_path / "b1" / MANIFEST).is_file()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(FIXTURES)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}/"
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")  # loopback, even where a proxy is configured
        (tmp_path / "cache").rename(tmp_path / "cache-old")  # download everything again, over http
        result = pull_fixtures(tmp_path / "b2", base)
        assert sorted(result.fetched) == sorted(FIXTURE_FILES)
        assert (tmp_path / "b2/wvs7/country_distributions.jsonl").read_bytes() == (
            tmp_path / "b1/wvs7/country_distributions.jsonl"
        ).read_bytes()
    finally:
        server.shutdown()
        server.server_close()


def test_builder_rejects_shares_that_do_not_fit_the_codebook() -> None:
    def src(key: str) -> bytes:
        s = next(x for x in bundle.SOURCES if x.key == key)
        return (FIXTURES / s.mirror_path).read_bytes()

    train = json.loads(src("simllm_train"))
    train[0]["output"] = train[0]["output"].replace("option D", "option E")
    with pytest.raises(
        DataError, match=r"Andorra record 0: shares for codes \[1, 2, 3, 5\], the codebook has \[1, 2, 3, 4\]"
    ):
        country_distributions_jsonl(
            json.dumps(train).encode(),
            src("simllm_valid"),
            src("wvb_codebook"),
            src("wvb_question_metadata"),
            train_qids=TRAIN_QIDS,
        )
    with pytest.raises(DataError, match="no country in the training split has all 7 questions"):
        country_distributions_jsonl(
            src("simllm_train"),
            src("simllm_valid"),
            src("wvb_codebook"),
            src("wvb_question_metadata"),
            train_qids=(*TRAIN_QIDS, 160),
        )


# ---------------------------------------------------------------------------------------------------------
# The IVS edition of the map points


def ivs(rows: str, column: str) -> bytes:
    return f"geo,year,{column}\n{rows}".encode()


ENTITIES = (
    b"country,name\nsweden,Sweden\njapan,Japan\nnigeria,Nigeria\nrussia,Russia\n"
    b'russian_federation,Russian Federation\nmoldova_rep_of,"Moldova, Rep. of"\natlantis,Atlantis\n'
)


def build_ivs(trad: str, surv: str, entities: bytes = ENTITIES) -> list[str]:
    return bundle.ivs_map_points(ivs(trad, "tradagg"), ivs(surv, "survsagg"), entities).decode().split("\n")


def test_ivs_edition_sign_window_latest_year_and_format() -> None:
    lines = build_ivs(
        "sweden,2016,0.5\nsweden,2017,1.23456\njapan,2019,1.7\njapan,2024,0.1\nnigeria,2018,-1.5\n"
        "moldova_rep_of,2023,-0.000049\n",
        "sweden,2016,-1.0\nsweden,2017,-2.98766\njapan,2019,-1.0\njapan,2024,2.0\nnigeria,2018,1.1\n"
        "moldova_rep_of,2023,0.7\n",
    )
    assert lines == [
        "iso3,name,trad_sec,surv_self",
        "JPN,Japan,1.7,1.0",  # 2019: 2024 is past the window
        'MDA,"Moldova, Rep. of",0.0,-0.7',  # 2023 is in the window; -0.000049 rounds to 0.0, not -0.0
        "NGA,Nigeria,-1.5,-1.1",  # survsagg > 0 is survival: surv_self < 0
        "SWE,Sweden,1.2346,2.9877",  # the latest year in the window (2017, not 2016); 4 decimals
        "",  # LF line ends, a final newline, rows sorted by name
    ]
    # the orientation of the real map: Sweden far on self-expression, Japan far on secular, Nigeria survival
    rows = {r[0]: (float(r[-2]), float(r[-1])) for r in csv.reader(lines[1:-1])}
    assert rows["SWE"][1] > 1.5 and rows["JPN"][0] > 1.5 and rows["NGA"][1] < 0


def test_ivs_edition_refusals_are_one_line() -> None:
    cases = [
        # two keys of one country in the window
        (
            "russia,2017,0.4\nrussian_federation,2018,0.5\n",
            "russia,2017,1.0\nrussian_federation,2018,1.0\n",
            "the IVS geos 'russia' and 'russian_federation' are both RUS within 2017-2023",
        ),
        ("atlantis,2018,0.1\n", "atlantis,2018,0.1\n", "the IVS geo 'atlantis' (2018) has no ISO3 code"),
        ("sweden,2018,0.1\n", "japan,2018,0.1\n", "the IVS files give japan 2018 a survsagg but no tradagg"),
        ("sweden,2018,0.1\nsweden,2018,0.2\n", "sweden,2018,0.1\n", "line 3: a second value for sweden 2018"),
        ("sweden,20x8,0.1\n", "sweden,2018,0.1\n", "for tradagg, line 2: expected geo,year,number"),
        ("sweden,2001,0.1\n", "sweden,2001,0.1\n", "no country with data in 2017-2023"),
    ]
    for trad, surv, problem in cases:
        with pytest.raises(DataError) as exc:
            build_ivs(trad, surv)
        assert problem in str(exc.value) and "\n" not in str(exc.value), problem
    # old-round spellings outside the window are no conflict
    assert build_ivs(
        "russia,2017,0.4\nrussian_federation,2008,0.5\n", "russia,2017,1.0\nrussian_federation,2008,1.0\n"
    )[1:] == ["RUS,Russia,0.4,-1.0", ""]
    # a geo without a name, and the wrong header
    with pytest.raises(DataError, match="the IVS geo 'sweden' is not in the country entities file"):
        build_ivs("sweden,2018,0.1\n", "sweden,2018,0.1\n", b"country,name\njapan,Japan\n")
    with pytest.raises(DataError, match="does not start with the header geo,year,survsagg"):
        bundle.ivs_map_points(ivs("sweden,2018,0.1\n", "tradagg"), ivs("", "survs"), ENTITIES)


def test_ivs_iso3_table() -> None:
    """Every key of the pinned entities file (but northern_cyprus) has a code that clca's names agree with."""
    table = bundle.IVS_GEO_ISO3
    assert len(table) == 117 and "northern_cyprus" not in table
    assert all(re.fullmatch(r"[A-Z]{3}", code) for code in table.values())
    # the spellings of one country share its code; the special cases of the WVS
    for a, b in [
        ("russia", "russian_federation"),
        ("moldova", "moldova_rep_of"),
        ("slovakia", "slovak_republic"),
        ("macedonia", "north_macedonia"),
        ("bosnia_herzegovina", "bosnia_and_herzegovina"),
        ("germany", "germany_west"),
        ("montenegro", "montenegro_rep_of"),
    ]:
        assert table[a] == table[b], (a, b)
    assert len(set(table.values())) == len(table) - 7
    assert (table["great_britain"], table["northern_ireland"]) == ("GBR", "NIR")
    assert [table[k] for k in ("kosovo", "taiwan_roc", "hong_kong_sar", "palestine")] == [
        "XKX",
        "TWN",
        "HKG",
        "PSE",
    ]
    # clca's country names know every code (Kosovo's and the WVS's Northern Ireland code included)
    unknown = {geo for geo, code in table.items() if find_country(code) is None}
    assert unknown == set()
    for geo, code in table.items():
        c = find_country(code)
        assert c is None or c.iso3 == code, geo
    # every geo of the synthetic extract is in the table
    entities = (
        FIXTURES / next(s for s in bundle.SOURCES if s.key == "ivs_geo_entities").mirror_path
    ).read_text()
    assert {row[0] for row in csv.reader(entities.splitlines()[1:])} <= set(table)


#: where the pinned IVS files may be: the user's download cache (filled by a real `clca data pull`; the test
#: session points CLCA_CACHE_DIR elsewhere), or a folder named by CLCA_TEST_DOWNLOADS holding them by sha256
REAL_DOWNLOADS = [
    Path(p).expanduser()
    for p in (os.environ.get("CLCA_TEST_DOWNLOADS"), Path.home() / ".cache" / "clca" / "downloads")
    if p
]


@pytest.mark.downloads
def test_ivs_edition_of_the_pinned_sources_matches_the_official_map(data_dir: Path) -> None:
    """With the real pinned files (in the download cache after a real `clca data pull`, or CLCA_TEST_DOWNLOADS):
    the pinned sha256 of the IVS edition, and its agreement with the WVSA's official 2022 points. Marked
    ``downloads``: CI has no GitHub and deselects it; missing files fail it rather than skip it."""
    srcs = {s.key: s for s in bundle.SOURCES}
    keys = ("ivs_tradagg", "ivs_survsagg", "ivs_geo_entities")
    found = [d for d in REAL_DOWNLOADS if all((d / srcs[k].sha256).is_file() for k in keys)]
    if not found:
        pytest.fail(
            "the pinned IVS files are not in the download cache: run `clca data pull` once, or set "
            "CLCA_TEST_DOWNLOADS to a folder holding them by sha256 (or deselect with -m 'not downloads')"
        )
    paths = [found[0] / srcs[k].sha256 for k in keys]
    from clca.data.editions import IVS_WAVE7_SHA256

    out = bundle.ivs_map_points(*(p.read_bytes() for p in paths))
    assert bundle.sha256_bytes(out) == IVS_WAVE7_SHA256
    ivs_rows = {r["iso3"]: r for r in csv.DictReader(out.decode().splitlines())}
    official = {r["iso3"]: r for r in csv.DictReader((data_dir / "culture/inglehart_welzel_2022.csv").open())}
    assert len(ivs_rows) == 87 and len(set(ivs_rows) & set(official)) == 86
    for col in ("trad_sec", "surv_self"):
        a = [float(ivs_rows[k][col]) for k in sorted(set(ivs_rows) & set(official))]
        b = [float(official[k][col]) for k in sorted(set(ivs_rows) & set(official))]
        assert statistics.correlation(a, b) > 0.95, col  # measured: 0.972 and 0.991
    assert float(ivs_rows["SWE"]["surv_self"]) > 3 and float(ivs_rows["JPN"]["trad_sec"]) > 1.5
    assert float(ivs_rows["NGA"]["surv_self"]) < -1


# ---------------------------------------------------------------------------------------------------------
# Precedence of data directories and `clca data status`


def test_precedence_of_data_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shared = tmp_path / "shared" / "data"
    shared.mkdir(parents=True)
    monkeypatch.setattr(settings, "project_root", lambda: tmp_path / "checkout")
    assert settings.data_dir() == shared  # nothing pulled: ../shared/data beside the checkout

    pulled = tmp_path / "cache" / "data"
    pull_fixtures(pulled)
    assert bundle.pulled_bundle_dir() == pulled
    assert settings.data_dir() == pulled  # a pulled bundle beats ../shared/data

    env = tmp_path / "env"
    env.mkdir()
    monkeypatch.setenv("CLCA_DATA_DIR", str(env))
    assert settings.data_dir() == env  # CLCA_DATA_DIR beats the pulled bundle
    settings.set_data_dir(tmp_path)
    assert settings.data_dir() == tmp_path  # --data-dir beats CLCA_DATA_DIR
    with settings.using_data_dir(shared, source="a run config's data_dir"):
        assert settings.data_dir() == shared  # the innermost setting wins
    assert settings.data_dir() == tmp_path
    settings.set_data_dir(None)
    monkeypatch.delenv("CLCA_DATA_DIR")

    (pulled / MANIFEST).unlink()  # without a manifest the cache folder is not a pulled bundle
    assert bundle.pulled_bundle_dir() is None
    assert settings.data_dir() == shared


def test_no_bundle_anywhere_names_the_pull(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(settings, "project_root", lambda: tmp_path / "checkout")
    with pytest.raises(DataError) as exc:
        settings.data_dir()
    msg = str(exc.value)
    assert "`clca data pull`" in msg and "--data-dir" in msg and "CLCA_DATA_DIR" in msg
    assert "\n" not in msg


def test_status_of_a_pulled_bundle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], cli_tables: None
) -> None:
    monkeypatch.setattr(settings, "project_root", lambda: tmp_path / "checkout")
    assert main(["data", "pull", "--mirror", str(FIXTURES)]) == 0
    out = capsys.readouterr().out
    assert f"built 12 files into {tmp_path / 'cache' / 'data'}" in out
    assert "  inglehart_welzel_2022: not supplied (optional: " in out
    assert "culture/inglehart_welzel.csv: edition ivs-wave7, Inglehart-Welzel points computed" in out
    assert main(["data", "status"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"bundle: {tmp_path / 'cache' / 'data'}"
    assert lines[1] == "from: the bundle pulled by `clca data pull` (in the cache)"
    assert lines[2].startswith("manifest: bundle_manifest.json, built ") and lines[2].endswith(", 13 files")
    assert (
        "  source simllm_train: yongcaoplus/SimLLMCultureDist@402ee0b350983fd665e6668d770c7a687c5669a6:"
        f"llama_recipes/datasets/custom_dataset.json sha256 {FIXTURE_FILES['simllm_train'][0]}" in lines
    )
    assert "  source inglehart_welzel_2022: not supplied (optional, no pinned public URL)" in lines
    assert lines[-3] == "checksums: all 13 files match the manifest"
    assert lines[-2].startswith(
        "inglehart-welzel map: culture/inglehart_welzel.csv, edition ivs-wave7 (from the manifest): "
        "Inglehart-Welzel points computed from the Integrated Values Surveys (WVS + EVS) aggregates"
    )
    assert "source: open-numbers/ddf--open_numbers--integrated_values_surveys_indicators@4cfde16" in lines[-2]
    assert lines[-1] == "complete: all 12 data files of the bundle are there"

    (tmp_path / "cache/data/wvs7/codebook.json").write_text("{}")
    (tmp_path / "cache/data/sotopia/agent_profiles.jsonl").unlink()
    assert main(["data", "status"]) == 2
    captured = capsys.readouterr()
    assert "checksums: 2 of 13 files do not match the manifest:" in captured.out
    assert (
        "  changed: wvs7/codebook.json (sha256 44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a, "
        f"expected {bundle.sha256_file(FIXTURES / bundle.SOURCES[1].mirror_path)})" in captured.out
    )
    assert "  missing: sotopia/agent_profiles.jsonl (file is missing, expected " in captured.out
    assert "complete:" not in captured.out
    assert captured.err.strip().splitlines() == [
        f"error: the bundle at {tmp_path / 'cache' / 'data'} does not match its manifest (2 files). "
        "Fix: rebuild it with `clca data pull --force` (add --to for a bundle outside the cache)."
    ]


def _with_extra_source(tmp_path: Path) -> tuple[tuple[Source, ...], tuple[Product, ...], Path]:
    """The fixture tables plus a file built from a source with no public copy, and that source's file."""
    extra = tmp_path / "extra.csv"
    extra.write_text("a,b\n1,2\n")
    source = bundle.unpinned_file(
        "extra",
        "extra.csv",
        sha256=bundle.sha256_file(extra),
        size=4,
        terms="hofstede",
        note="extra is not public",
    )
    products = (*fixture_products(), bundle.product("culture/extra.csv", ("extra",), bundle.verbatim))
    return (*fixture_sources(), source), products, extra


def test_a_partial_pull_exits_2_and_the_next_pull_rebuilds_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    sources, products, extra = _with_extra_source(tmp_path)
    monkeypatch.setattr(bundle, "SOURCES", sources)
    monkeypatch.setattr(bundle, "PRODUCTS", products)
    dest = tmp_path / "elsewhere"
    assert main(["data", "pull", "--to", str(dest), "--mirror", str(FIXTURES)]) == 2
    captured = capsys.readouterr()
    assert f"use it with --data-dir {dest} or CLCA_DATA_DIR={dest}" in captured.out
    err = captured.err.strip().splitlines()
    assert err == [
        "not built: culture/extra.csv: extra is not public",
        f"error: the bundle at {dest} is incomplete: culture/extra.csv not built (sources extra not available). "
        "Fix: supply them from a mirror (--mirror, or CLCA_DATA_MIRROR for scripts/setup.sh) or with "
        "--source KEY=PATH, then rerun `clca data pull` (see docs/data.md).",
    ]
    assert main(["--data-dir", str(dest), "data", "status"]) == 2
    captured = capsys.readouterr()
    assert "from: the --data-dir option" in captured.out
    assert "checksums: all 13 files match the manifest" in captured.out
    assert "incomplete: culture/extra.csv was not built: extra is not public" in captured.out
    assert captured.err.startswith(f"error: the bundle at {dest} is incomplete: culture/extra.csv not built.")
    # an incomplete pulled bundle is rebuilt by the next pull, --force or not
    assert (
        main(["data", "pull", "--to", str(dest), "--mirror", str(FIXTURES), "--source", f"extra={extra}"])
        == 0
    )
    assert "is incomplete: rebuilding it" in capsys.readouterr().out
    assert (dest / "culture/extra.csv").read_text() == "a,b\n1,2\n"
    assert main(["--data-dir", str(dest), "data", "status"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "complete: all 12 data files of the bundle are there"


def test_status_of_a_bundle_without_manifest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], data_dir: Path
) -> None:
    d = tmp_path / "handmade"
    (d / "culture").mkdir(parents=True)
    (d / "culture/hofstede_2015.csv").write_bytes(b"ctr;country\n")
    (d / "README.md").write_bytes(b"hi\n")
    assert main(["--data-dir", str(d), "data", "status"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [
        f"bundle: {d}",
        "from: the --data-dir option",
        "manifest: none (bundle_manifest.json is written by `clca data pull`), so the checksums cannot be "
        "checked; 2 files and their sha256:",
        "  98ea6e4f216f2fb4b69fff9b3a44842c38686ca685f3f55dc48c5d3fb1107be4  README.md",
        f"  {bundle.sha256_bytes(b'ctr;country' + bytes([10]))}  culture/hofstede_2015.csv",
        "inglehart-welzel map: none (culture/inglehart_welzel.csv is missing)",
        "incomplete: 11 data files are missing: wvs7/question_metadata.json, wvs7/codebook.json, "
        "wvs7/answer_adjustment.json, wvs7/country_distributions.jsonl, sotopia/environment_profiles.jsonl, "
        "sotopia/agent_profiles.jsonl, sotopia/relationship_profiles.jsonl, "
        "sotopia/env_agent_combo_storages.jsonl, sotopia/env_subsets.json, "
        "sotopia/sotopia_pi_inspirational_prompts.csv, culture/inglehart_welzel.csv",
    ]
    # the shared bundle (no manifest, the map file under its older name): complete, official 2022 points
    assert main(["--data-dir", str(data_dir), "data", "status"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-2] == (
        "inglehart-welzel map: culture/inglehart_welzel_2022.csv, edition wvsa-2022 (from the file's sha256): "
        "the World Values Survey Association's official 2022 Inglehart-Welzel map points (WVS wave 7); source: "
        "World Values Survey Association, Inglehart-Welzel World Cultural Map 2022 (supplied file, sha256 "
        "b8f580a27d9c052e7fcff2f45d9c05cdf88442cef13f8d84c9c8c50ee8e15c71)"
    )
    assert out[-1] == "complete: all 12 data files of the bundle are there"


def test_status_names_the_pull_when_no_bundle_is_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(settings, "project_root", lambda: tmp_path / "checkout")
    assert main(["data", "status"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith(
        f"error: data directory {tmp_path / 'shared' / 'data'} (from the default ../shared/data)"
    )
    assert "run `clca data pull`" in err


def test_bad_source_option_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["data", "pull", "--to", str(tmp_path / "b"), "--source", "nonsense"]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: --source 'nonsense' is not KEY=PATH. Fix: e.g. --source inglehart_welzel_2022=map.csv."
    )
    assert main(["data", "pull", "--to", str(tmp_path / "b"), "--source", "nope=x.csv"]) == 2
    assert capsys.readouterr().err.startswith("error: --source names unknown source(s) nope.")
    assert not (tmp_path / "b").exists()

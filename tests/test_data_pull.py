"""``clca data pull`` / ``clca data status``: build the bundle offline from a mirror of source extracts.

``tests/fixtures/pull/`` is a mirror (``<owner>/<repo>/<commit>/<path>``) holding a few records of each real
source file in its own format. Their sha256 differ from the pinned full files, so the tests pass their own
sources table (:func:`fixture_sources`). Expected values were checked by hand against the rows of the real
bundle (``../shared/data``) for the same countries and questions.
"""

from __future__ import annotations

import http.server
import json
import shutil
import threading
from collections.abc import Iterator
from dataclasses import replace
from functools import partial
from pathlib import Path

import pytest

from clca import settings
from clca.cli import main
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

#: sha256 and size of each fixture extract (the pinned table has those of the full files).
FIXTURE_FILES: dict[str, tuple[str, int]] = {
    "wvb_question_metadata": ("4dfb0a5ac30414ac0d3c800abad345cb03a6dd964d9892ffba243c78d06ca9c7", 2066),
    "wvb_codebook": ("ea69c302f36b8153cbf602b6ae522a6d4f5a8545d4632a6e1139f4b64b3fb686", 4112),
    "wvb_answer_adjustment": ("e8e945037af99be340b64632ce4e5c3055aa7831c524bff3d61766b24deb3f97", 168),
    "simllm_train": ("777eed03f2f666890f057c8ae38a27257075936671baf23e53a1d055a4a74714", 5300),
    "simllm_valid": ("7c2229cb0f04ab311a5be6f28479c20ba53b41895258686f9c6165afe2d72389", 1801),
    "sotopia_environment_profiles": (
        "c197f874c9928b11bebdbad61dd0245cd137b353c8e287c41a9ccf7dbf460139",
        1519,
    ),
    "sotopia_agent_profiles": ("374ebe69d19e578abebc1cb1d259f9f4a6607075716eef7f48b3abe0859381e5", 1752),
    "sotopia_relationship_profiles": (
        "a3ed16ee77cc9cb9c48e51d6426a54c00ce6c16f1d89590dd564ddf58ea47a73",
        927,
    ),
    "sotopia_env_agent_combo_storages": (
        "36028d816770128243d8b8b180dc956de50df10c18fe793a84d4a15b9a3859f6",
        474,
    ),
    "sotopia_pi_used_prompt": ("22c836e25e684343d001ba05012c6235f7d54f60d8c8c434eaf66e5c647199e8", 282),
    "sotopia_pi_used_env": ("bda78dcf4f0ae6e2929e903ff4d9a76d395ee7d878088846ca02c0ad54bd5d7d", 354),
    "hofstede_2015": ("cbaa53b8416d9cfe562c713b23564127d52667b4ade5b45028b8f86448cc179a", 259),
    "inglehart_welzel_2022": ("c5966a288b4378456f276ffaeee437102ae2e85bedea46c3aba807f47ee31af3", 110),
}
#: The questions of the training-split extract (the real split has Q1-Q163 without Q82, Q94-Q105).
TRAIN_QIDS = (1, 36, 42, 119, 152)
BUNDLE_FILES = [
    "README.md",
    "culture/hofstede_2015.csv",
    "culture/inglehart_welzel_2022.csv",
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


def fixture_sources(**wrong_sha: str) -> tuple[Source, ...]:
    """The pinned table (same URLs and mirror paths) with the fixture extracts' sha256 and sizes."""
    out = []
    for s in bundle.SOURCES:
        sha, size = FIXTURE_FILES[s.key]
        out.append(s.model_copy(update={"sha256": wrong_sha.get(s.key, sha), "size": size}))
    return tuple(out)


def fixture_products() -> tuple[Product, ...]:
    """The pinned products, with the training split's question list of the extract."""
    build = partial(country_distributions_jsonl, train_qids=TRAIN_QIDS)
    return tuple(
        replace(p, build=build) if p.file == "wvs7/country_distributions.jsonl" else p
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


def test_country_distributions_match_the_real_bundle_rows(tmp_path: Path) -> None:
    pull_fixtures(tmp_path / "b")
    rows = [
        json.loads(line)
        for line in (tmp_path / "b/wvs7/country_distributions.jsonl").read_text().splitlines()
    ]
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
    assert got == expected
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
    assert rows[3] == andorra_q119
    assert list(rows[3]) == list(andorra_q119)  # the bundle's field order
    q164 = rows[5]
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
        ("culture/inglehart_welzel_2022.csv", "inglehart_welzel_2022"),
    ]:
        assert (b / rel).read_bytes() == src[key].read_bytes(), rel
    # Hofstede: the same ';'-separated rows with LF instead of CRLF (rows as in ../shared/data)
    assert (b / "culture/hofstede_2015.csv").read_text().split("\n") == [
        "ctr;country;pdi;idv;mas;uai;ltowvs;ivr",
        "AFE;Africa East;64;27;41;52;32;40",
        "AFW;Africa West;77;20;46;54;9;78",
        "ALB;Albania;#NULL!;#NULL!;#NULL!;#NULL!;61;15",
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
    assert set(srcs) == set(FIXTURE_FILES)
    codebook = srcs["wvb_codebook"]
    assert codebook.url == (
        "https://raw.githubusercontent.com/Demon702/WorldValuesBench/635db7455e2c656978929210eba984bc09ddd659/"
        "dataset_construction/codebook.json"
    )
    assert codebook.commit == "635db7455e2c656978929210eba984bc09ddd659"
    assert codebook.sha256 == FIXTURE_FILES["wvb_codebook"][0]
    assert srcs["inglehart_welzel_2022"].url is None
    assert sorted(m.files) == BUNDLE_FILES
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
    assert text.count("non-profit use with citation") == 2  # WVS aggregates, Inglehart-Welzel map
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

    def boom(_: bytes) -> bytes:
        raise RuntimeError("disk full")

    broken = (
        *fixture_products()[:-1],
        Product("culture/inglehart_welzel_2022.csv", ("inglehart_welzel_2022",), boom),
    )
    with pytest.raises(DataError, match=r"building culture/inglehart_welzel_2022.csv failed: disk full"):
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
    # everything before the missing file was verified and cached; the rerun fetches only the missing one
    moved.rename(mirror / hof.mirror_path)
    result = pull_fixtures(dest, mirror)
    assert result.fetched == ["hofstede_2015", "inglehart_welzel_2022"]
    assert len(result.from_cache) == len(FIXTURE_FILES) - 2
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


def test_source_without_public_copy_is_recorded_as_missing(tmp_path: Path) -> None:
    mirror = tmp_path / "mirror"
    shutil.copytree(FIXTURES, mirror)
    shutil.rmtree(mirror / "_unpinned")
    result = pull_fixtures(tmp_path / "b", mirror)
    assert [m.file for m in result.missing] == ["culture/inglehart_welzel_2022.csv"]
    assert "--source inglehart_welzel_2022=PATH" in result.missing[0].reason
    assert not (tmp_path / "b/culture/inglehart_welzel_2022.csv").exists()
    m = read_manifest(tmp_path / "b")
    assert m is not None and [x.file for x in m.missing] == ["culture/inglehart_welzel_2022.csv"]
    # supplied as a local file it is checked and built
    iw = FIXTURES / "_unpinned/inglehart_welzel_2022/inglehart_welzel_2022.csv"
    result = pull_fixtures(tmp_path / "b", mirror, force=True, local={"inglehart_welzel_2022": iw})
    assert result.missing == [] and "culture/inglehart_welzel_2022.csv" in result.built
    wrong = tmp_path / "iw.csv"
    wrong.write_text("iso3,name,trad_sec,surv_self\nALB,Albania,0,0\n")
    with pytest.raises(DataError, match="checksum mismatch for inglehart_welzel_2022"):
        pull_fixtures(tmp_path / "b3", mirror, local={"inglehart_welzel_2022": wrong})


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
    with pytest.raises(DataError, match="no country in the training split has all 6 questions"):
        country_distributions_jsonl(
            src("simllm_train"),
            src("simllm_valid"),
            src("wvb_codebook"),
            src("wvb_question_metadata"),
            train_qids=(*TRAIN_QIDS, 160),
        )


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
    assert main(["data", "status"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"bundle: {tmp_path / 'cache' / 'data'}"
    assert out[1] == "from: the bundle pulled by `clca data pull` (in the cache)"
    assert out[2].startswith("manifest: bundle_manifest.json, built ") and out[2].endswith(", 13 files")
    assert (
        "  source simllm_train: yongcaoplus/SimLLMCultureDist@402ee0b350983fd665e6668d770c7a687c5669a6:"
        f"llama_recipes/datasets/custom_dataset.json sha256 {FIXTURE_FILES['simllm_train'][0]}" in out
    )
    assert out[-1] == "checksums: all 13 files match the manifest"

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
    assert captured.err.strip().splitlines() == [
        f"error: the bundle at {tmp_path / 'cache' / 'data'} does not match its manifest (2 files). "
        "Fix: rebuild it with `clca data pull --force` (add --to for a bundle outside the cache)."
    ]


def test_status_of_an_incomplete_bundle(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], cli_tables: None
) -> None:
    mirror = tmp_path / "mirror"
    shutil.copytree(FIXTURES, mirror)
    shutil.rmtree(mirror / "_unpinned")
    dest = tmp_path / "elsewhere"
    assert main(["data", "pull", "--to", str(dest), "--mirror", str(mirror)]) == 0
    captured = capsys.readouterr()
    assert f"use it with --data-dir {dest} or CLCA_DATA_DIR={dest}" in captured.out
    assert captured.err.startswith("not built: culture/inglehart_welzel_2022.csv: no pinned public copy")
    assert main(["--data-dir", str(dest), "data", "status"]) == 2
    captured = capsys.readouterr()
    assert "from: the --data-dir option" in captured.out
    assert "checksums: all 12 files match the manifest" in captured.out
    assert (
        "incomplete: culture/inglehart_welzel_2022.csv was not built: no pinned public copy" in captured.out
    )
    assert captured.err.startswith(
        f"error: the bundle at {dest} is incomplete: culture/inglehart_welzel_2022.csv not built."
    )


def test_status_of_a_bundle_without_manifest(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
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
    ]


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

"""The data bundle's layout owner (:class:`DataBundle`), the typed WVS reader, and the readers built on it."""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

import pytest
from test_data_pull import pull_fixtures

from clca import settings
from clca.culture import get_profile, list_cultures
from clca.data.bundle import MANIFEST, PRODUCTS, read_manifest, sha256_file
from clca.data.editions import (
    IVS_WAVE7_SHA256,
    OFFICIAL_SHA256,
    edition_from_sha256,
    inglehart_welzel_edition,
)
from clca.data.layout import DataBundle
from clca.data.wvs import REQUIRED, WvsRow, load_wvs7, read_wvs_rows
from clca.errors import DataError
from clca.leakage import ngrams, words, wvs_ngrams
from clca.report import culture_map
from clca.report.culture_map import expected_position, fit_culture_map

GOOD = {
    "country": "X",
    "qid": "Q1",
    "question": "q?",
    "options": ["a", "b"],
    "option_codes": [1, 2],
    "probs": [0.5, 0.5],
}


def _constants() -> dict[str, str]:
    return {k: v for k, v in vars(DataBundle).items() if k.isupper() and isinstance(v, str)}


# ---------------------------------------------------------------------------------------------------------
# The owner


def test_owner_names_every_product_exactly_once() -> None:
    names = list(_constants().values())
    # 12 data files, the map file's older name, README.md, bundle_manifest.json
    assert len(names) == len(set(names)) == 15
    assert [p.file for p in PRODUCTS] == list(DataBundle.FILES)
    assert len(set(DataBundle.FILES)) == 12
    assert set(DataBundle.FILES) == set(names) - {
        DataBundle.README,
        DataBundle.MANIFEST,
        DataBundle.INGLEHART_WELZEL_LEGACY,
    }
    assert DataBundle.LEGACY_NAMES == {DataBundle.INGLEHART_WELZEL: (DataBundle.INGLEHART_WELZEL_LEGACY,)}
    assert DataBundle.MANIFEST == settings.BUNDLE_MANIFEST


def test_every_file_of_the_real_bundle_is_named(data_dir: Path) -> None:
    bundle = DataBundle.current()
    assert bundle.root == settings.data_dir() == data_dir
    present = {p.relative_to(data_dir).as_posix() for p in data_dir.rglob("*") if p.is_file()}
    assert present <= set(_constants().values()), present - set(_constants().values())
    for rel in DataBundle.FILES:
        assert bundle.file(rel) == bundle.path(rel) == bundle / rel
        # the shared bundle names the map points by their older name
        expected = DataBundle.INGLEHART_WELZEL_LEGACY if rel == DataBundle.INGLEHART_WELZEL else rel
        assert bundle.file(rel) == data_dir / expected
    assert bundle.wvs_distributions == data_dir / DataBundle.WVS_DISTRIBUTIONS
    assert bundle.hofstede == data_dir / DataBundle.HOFSTEDE
    assert bundle.sotopia_norms == data_dir / DataBundle.SOTOPIA_NORMS


def test_run_inputs() -> None:
    """The files a run hashes into its manifest, in the order the manifest always listed them."""
    assert DataBundle.RUN_INPUTS == (
        "wvs7/country_distributions.jsonl",
        "culture/hofstede_2015.csv",
        "culture/inglehart_welzel.csv",
        "sotopia/environment_profiles.jsonl",
        "sotopia/agent_profiles.jsonl",
        "sotopia/env_agent_combo_storages.jsonl",
        "sotopia/relationship_profiles.jsonl",
        "sotopia/sotopia_pi_inspirational_prompts.csv",
    )
    assert len(set(DataBundle.RUN_INPUTS)) == len(DataBundle.RUN_INPUTS)
    assert set(DataBundle.RUN_INPUTS) <= set(DataBundle.FILES)


def test_run_input_paths_follow_the_older_name(data_dir: Path) -> None:
    paths = DataBundle(data_dir).run_input_paths()
    assert len(paths) == len(DataBundle.RUN_INPUTS) and all(p.is_file() for p in paths)
    assert data_dir / DataBundle.INGLEHART_WELZEL_LEGACY in paths


def test_missing_file_is_one_line_error(tmp_path: Path) -> None:
    with settings.using_data_dir(tmp_path):
        bundle = DataBundle.current()
    assert bundle.root == tmp_path
    assert bundle / DataBundle.HOFSTEDE == tmp_path / "culture/hofstede_2015.csv"  # unchecked
    with pytest.raises(DataError) as exc:
        bundle.inglehart_welzel  # noqa: B018
    msg = str(exc.value)
    assert "\n" not in msg
    assert msg.startswith(f"data file {tmp_path / DataBundle.INGLEHART_WELZEL} is missing.")
    assert (
        "(it needs culture/inglehart_welzel.csv or, in an older bundle, culture/inglehart_welzel_2022.csv); "
        "`clca data pull` builds one." in msg
    )


def test_locations_live_in_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLCA_CACHE_DIR", str(tmp_path / "cache"))
    assert settings.cache_root() == tmp_path / "cache"
    assert not (tmp_path / "cache").exists()  # cache_root does not create it
    assert settings.default_bundle_dir() == tmp_path / "cache" / "data"
    assert settings.download_cache_dir() == tmp_path / "cache" / "downloads"
    assert settings.pulled_bundle_dir() is None
    (tmp_path / "cache" / "data").mkdir(parents=True)
    (tmp_path / "cache" / "data" / settings.BUNDLE_MANIFEST).write_text("{}")
    assert settings.pulled_bundle_dir() == tmp_path / "cache" / "data"


def test_settings_import_nothing_from_the_data_package() -> None:
    import grimp

    graph = grimp.build_graph("clca")
    assert graph.find_shortest_chain("clca.settings", "clca.data.bundle") is None
    assert graph.find_shortest_chain("clca.settings", "clca.data") is None


# ---------------------------------------------------------------------------------------------------------
# The typed WVS reader


def _write(path: Path, *lines: object) -> Path:
    path.write_text(
        "".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines), encoding="utf-8"
    )
    return path


@pytest.mark.parametrize(
    ("bad", "problem"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "not a JSON object"),
        ({k: v for k, v in GOOD.items() if k not in ("probs", "qid")}, "missing field(s) qid, probs"),
        (dict(GOOD, probs=[0.5]), "options, option_codes and probs differ in length (or < 2 options)"),
        (dict(GOOD, probs=[0.5, -0.1]), "probs must be non-negative with a positive sum"),
        (dict(GOOD, probs="0.5 0.5"), "options, option_codes and probs must be lists"),
        (dict(GOOD, option_codes=[1, "b"]), "probs must be numbers and option_codes integers"),
        (dict(GOOD, country=None), "country: Input should be a valid string"),
    ],
)
def test_reader_names_file_and_line(tmp_path: Path, bad: object, problem: str) -> None:
    p = _write(tmp_path / "dist.jsonl", GOOD, "", bad)
    with pytest.raises(DataError) as exc:
        read_wvs_rows(p)
    msg = str(exc.value)
    assert "\n" not in msg
    assert msg.startswith(f"{p.resolve()}, line 3: {problem}")
    assert "Fix: restore the file from the clca data bundle, or fix that line" in msg


def test_reader_rows_and_cache(tmp_path: Path) -> None:
    p = _write(tmp_path / "dist.jsonl", GOOD, "", dict(GOOD, qid=7, question=None, iso3="XXX"))
    rows = read_wvs_rows(p)
    assert [(r.qid, r.line, r.question) for r in rows] == [("Q1", 1, "q?"), ("7", 3, None)]
    assert rows[0].probs == (0.5, 0.5) and rows[0].iso3 == "" and rows[1].iso3 == "XXX"
    assert "line" not in rows[0].model_dump()
    assert read_wvs_rows(p) is rows  # cached per file version
    _write(p, dict(GOOD, country="Y"))
    st = p.stat()
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert [r.country for r in read_wvs_rows(p)] == ["Y"]
    assert set(REQUIRED) == set(GOOD)
    with pytest.raises(DataError, match=r"WVS file .*nowhere\.jsonl does not exist"):
        read_wvs_rows(tmp_path / "nowhere.jsonl")


def test_real_rows_have_every_field(data_dir: Path) -> None:
    rows = read_wvs_rows()
    first = json.loads((data_dir / DataBundle.WVS_DISTRIBUTIONS).open(encoding="utf-8").readline())
    assert list(first) == [k for k in WvsRow.model_fields if k != "line"]  # the builder's field order
    assert rows[0].model_dump(mode="json") == first
    assert len(rows) == sum(
        1 for line in (data_dir / DataBundle.WVS_DISTRIBUTIONS).open(encoding="utf-8") if line.strip()
    )


# ---------------------------------------------------------------------------------------------------------
# The four readers agree with it


def test_survey_agrees_with_the_reader(data_dir: Path) -> None:
    rows = read_wvs_rows()
    sv = load_wvs7()
    assert set(sv.countries()) == {r.country for r in rows if r.question is not None}
    assert set(sv.items) == {r.qid for r in rows if r.question is not None}
    for r in rows[:300]:
        if r.question is not None:
            item = sv.items[r.qid]
            assert item.codes == list(r.option_codes) and item.text == r.question
            assert item.human[r.country] == pytest.approx([p / sum(r.probs) for p in r.probs])


def test_profiles_agree_with_the_reader(data_dir: Path) -> None:
    in_wvs = {c for c in list_cultures() if get_profile(c).in_wvs}
    assert in_wvs == {r.country for r in read_wvs_rows()}


def test_leakage_index_agrees_with_the_reader(data_dir: Path) -> None:
    index = wvs_ngrams(8)
    rows = read_wvs_rows()
    assert set().union(*index.values()) <= {r.qid for r in rows}
    for r in rows[:200]:
        for text in (r.question, r.simllm_question):
            for g in ngrams(words(text or ""), 8):
                assert g in index


def test_culture_map_agrees_with_the_reader(data_dir: Path) -> None:
    with DataBundle(data_dir).inglehart_welzel.open(encoding="utf-8") as fh:
        mapped = {row["iso3"] for row in csv.DictReader(fh)}
    rows = [r for r in read_wvs_rows() if r.qid == "Q1"]
    cmap = fit_culture_map(["Q1", "Q2", "Q3"])
    assert cmap.countries == sorted(r.country for r in rows if r.iso3 in mapped)
    by_country = {r.country: r for r in rows}
    assert cmap.iso3 == [by_country[c].iso3 for c in cmap.countries]
    assert list(cmap.features[:, 0]) == [expected_position(by_country[c].probs) for c in cmap.countries]


def test_a_bad_line_is_the_same_error_in_every_reader(tmp_path: Path, data_dir: Path) -> None:
    (tmp_path / "culture").mkdir()
    (tmp_path / "wvs7").mkdir()
    for rel in (DataBundle.HOFSTEDE, DataBundle.INGLEHART_WELZEL):
        shutil.copy(DataBundle(data_dir) / rel, tmp_path / rel)
    p = _write(tmp_path / DataBundle.WVS_DISTRIBUTIONS, GOOD, dict(GOOD, probs=[1]))
    expected = f"{p.resolve()}, line 2: options, option_codes and probs differ"
    with settings.using_data_dir(tmp_path):
        for reader in (load_wvs7, list_cultures, wvs_ngrams, fit_culture_map):
            with pytest.raises(DataError) as exc:
                reader()
            assert str(exc.value).startswith(expected), reader


# ---------------------------------------------------------------------------------------------------------
# The map file's older name, and its edition


def _culture_bundle(root: Path, data_dir: Path, *names: str) -> Path:
    """A bundle with the real Hofstede file and the real map points under each of ``names``."""
    (root / "culture").mkdir(parents=True)
    shutil.copy(data_dir / DataBundle.HOFSTEDE, root / DataBundle.HOFSTEDE)
    for name in names:
        shutil.copy(DataBundle(data_dir).inglehart_welzel, root / name)
    return root


def test_the_older_map_name_is_read_when_the_new_one_is_absent(tmp_path: Path, data_dir: Path) -> None:
    old = _culture_bundle(tmp_path / "old", data_dir, DataBundle.INGLEHART_WELZEL_LEGACY)
    assert DataBundle(old).inglehart_welzel == old / DataBundle.INGLEHART_WELZEL_LEGACY
    assert DataBundle(old) / DataBundle.INGLEHART_WELZEL == old / DataBundle.INGLEHART_WELZEL_LEGACY
    both = _culture_bundle(
        tmp_path / "both", data_dir, DataBundle.INGLEHART_WELZEL_LEGACY, DataBundle.INGLEHART_WELZEL
    )
    assert DataBundle(both).inglehart_welzel == both / DataBundle.INGLEHART_WELZEL  # the new name wins
    # the readers go through it: China's point under the new name, moved, is what profiles and the map see
    text = (
        (both / DataBundle.INGLEHART_WELZEL)
        .read_text()
        .replace("CHN,China,0.5978,-0.1034", "CHN,China,1.9,2.5")
    )
    (both / DataBundle.INGLEHART_WELZEL).write_text(text)
    with settings.using_data_dir(old):
        assert get_profile("China").inglehart_welzel == {"trad_sec": 0.5978, "surv_self": -0.1034}
        assert culture_map._load_iw()["CHN"] == (0.5978, -0.1034)
    with settings.using_data_dir(both):
        assert get_profile("China").inglehart_welzel == {"trad_sec": 1.9, "surv_self": 2.5}
        assert get_profile("China").iw_words == ["uttermost self-expression values", "uttermost secular"]
        assert culture_map._load_iw()["CHN"] == (1.9, 2.5)


def test_edition_of_the_shared_bundle_is_read_from_its_sha256(data_dir: Path) -> None:
    e = inglehart_welzel_edition(DataBundle(data_dir))
    assert (e.id, e.decided_by, e.file) == ("wvsa-2022", "sha256", DataBundle.INGLEHART_WELZEL_LEGACY)
    assert e.sha256 == OFFICIAL_SHA256
    assert (
        e.description
        == "the World Values Survey Association's official 2022 Inglehart-Welzel map points (WVS wave 7)"
    )
    with settings.using_data_dir(data_dir):
        assert inglehart_welzel_edition() == e  # default: the bundle in use
    assert edition_from_sha256(IVS_WAVE7_SHA256) == "ivs-wave7"
    assert edition_from_sha256("0" * 64) == "unknown"


def test_edition_of_a_pulled_bundle_is_read_from_its_manifest(tmp_path: Path, data_dir: Path) -> None:
    b = tmp_path / "b"
    pull_fixtures(b)  # the synthetic IVS extracts: not the pinned build, so only the manifest can say
    e = inglehart_welzel_edition(DataBundle(b))
    assert (e.id, e.decided_by, e.file) == ("ivs-wave7", "manifest", DataBundle.INGLEHART_WELZEL)
    assert e.source.startswith(
        "open-numbers/ddf--open_numbers--integrated_values_surveys_indicators@4cfde16b97e85deeff056ca56af3cc3744f5b8dd"
    )
    assert "latest survey year in 2017-2023" in e.description and "\n" not in e.line()

    # a manifest without the edition field (older pulls) is read by the sources the file was built from
    m = read_manifest(b)
    assert m is not None
    m.files[DataBundle.INGLEHART_WELZEL].edition = None
    (b / MANIFEST).write_text(m.model_dump_json())
    assert inglehart_welzel_edition(DataBundle(b)).id == "ivs-wave7"

    # a file that no longer matches its manifest is judged by its sha256 alone
    (b / DataBundle.INGLEHART_WELZEL).write_text("iso3,name,trad_sec,surv_self\nGBR,Great Britain,0.4,2.3\n")
    e = inglehart_welzel_edition(DataBundle(b))
    assert (e.id, e.decided_by) == ("unknown", "sha256")

    # the supplied official points, and any other supplied file
    official = DataBundle(data_dir).inglehart_welzel
    pull_fixtures(tmp_path / "o", local={"inglehart_welzel_2022": official})
    e = inglehart_welzel_edition(DataBundle(tmp_path / "o"))
    assert (e.id, e.decided_by, e.sha256) == ("wvsa-2022", "manifest", OFFICIAL_SHA256)
    mine = tmp_path / "mine.csv"
    mine.write_text(official.read_text().replace("0.5978", "0.6"))
    pull_fixtures(tmp_path / "u", local={"inglehart_welzel_2022": mine})
    e = inglehart_welzel_edition(DataBundle(tmp_path / "u"))
    assert (e.id, e.decided_by) == ("user", "manifest")
    assert e.source == f"a user-supplied file, sha256 {sha256_file(mine)}"

    with pytest.raises(DataError, match=r"inglehart_welzel\.csv is missing"):
        inglehart_welzel_edition(DataBundle(tmp_path / "nothing"))

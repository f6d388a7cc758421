"""Survey loaders on the real bundle and on tiny fixtures in the published formats; selection and errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clca.data.goqa import is_non_substantive, load_goqa
from clca.data.survey import parse_question_spec, resolve_countries
from clca.data.wvb import load_respondents, sample_respondents
from clca.data.wvs import load_wvs7
from clca.errors import DataError

FIX = Path(__file__).parent / "fixtures"


def test_wvs7_real_bundle(data_dir: Path) -> None:
    sv = load_wvs7()
    countries = sv.countries()
    assert len(countries) == 46 and "Great Britain" in countries and "Mexico" not in countries
    q1 = sv.items["Q1"]
    assert q1.codes == [1, 2, 3, 4] and q1.options[0] == "Very important" and q1.ordinal
    assert q1.text.startswith("On a scale of 1 to 4")
    assert sum(q1.human["China"]) == pytest.approx(1.0)
    assert "Q42" not in sv.items and any("Q42" in n for n in sv.notes)
    sel = sv.select("Q1-Q45")
    assert len(sel) == 44 and sel[0].qid == "Q1" and sel[-1].qid == "Q45"
    assert sv.items["Q106"].k == 10


def test_question_spec_parsing() -> None:
    avail = [f"Q{i}" for i in range(1, 50) if i != 42]
    assert parse_question_spec("Q1-Q3", avail) == ["Q1", "Q2", "Q3"]
    assert parse_question_spec("Q40-Q41,Q43-Q44", avail) == ["Q40", "Q41", "Q43", "Q44"]
    assert parse_question_spec("q7, Q10,Q7", avail) == ["Q7", "Q10"]
    assert parse_question_spec("Q41-Q43", avail) == ["Q41", "Q43"]
    assert parse_question_spec("all", avail) == avail
    with pytest.raises(DataError, match="Q42"):
        parse_question_spec("Q42", avail)
    with pytest.raises(DataError, match="matches no question"):
        parse_question_spec("Q100-Q120", avail)
    with pytest.raises(DataError, match="not of the form"):
        parse_question_spec("Q5-Q2", avail)


def test_country_resolution_suggests_close_matches() -> None:
    avail = ["China", "Great Britain", "Germany", "Japan"]
    assert resolve_countries("china, Japan", avail) == ["China", "Japan"]
    with pytest.raises(DataError) as exc:
        resolve_countries(["Chnia"], avail)
    msg = str(exc.value)
    assert "China" in msg and "clca data countries" in msg and "\n" not in msg


def test_wvs_malformed_file_names_line(tmp_path: Path) -> None:
    good = {
        "country": "X",
        "qid": "Q1",
        "question": "q?",
        "options": ["a", "b"],
        "option_codes": [1, 2],
        "probs": [0.5, 0.5],
    }
    p = tmp_path / "dist.jsonl"
    p.write_text(json.dumps(good) + "\n{not json\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"dist\.jsonl, line 2: not valid JSON"):
        load_wvs7(p)
    bad = dict(good, probs=[0.5])
    p.write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match="line 2: options, option_codes and probs differ"):
        load_wvs7(p)
    p.write_text(json.dumps({k: v for k, v in good.items() if k != "probs"}) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match="line 1: missing field"):
        load_wvs7(p)


def test_goqa_fixture_drops_non_substantive_and_renormalises() -> None:
    sv = load_goqa(FIX / "goqa_3rows.csv")
    assert list(sv.items) == ["Q1", "Q2", "Q3"]
    q1 = sv.items["Q1"]
    assert q1.options == ["Acceptable", "Unacceptable", "Not a moral issue"]
    assert q1.human["Britain"] == pytest.approx([0.125, 0.7916667, 0.0833333], abs=1e-6)
    assert q1.human["Germany"] == pytest.approx([0.1, 0.6, 0.3])
    q2 = sv.items["Q2"]
    assert q2.options == ["A lot", "Somewhat", "Not too much", "Not at all"] and q2.codes == [1, 2, 3, 4]
    assert q2.human["Japan"] == pytest.approx([0.05 / 0.9, 0.25 / 0.9, 0.4 / 0.9, 0.2 / 0.9])
    assert not q2.ordinal
    assert sv.countries() == ["Britain", "Germany", "Japan"]
    assert all(
        is_non_substantive(x) for x in ["Don't know", "DK/Refused", "Refused", "No answer", "Don’t know"]
    )
    assert not is_non_substantive("Somewhat")


def test_goqa_malformed(tmp_path: Path) -> None:
    p = tmp_path / "g.csv"
    p.write_text("question,selections,options,source\n\"q\",\"{'A': [0.5, 0.5]}\",\"['x', 'y', 'z']\",GAS\n")
    with pytest.raises(DataError, match=r"g\.csv, line 2: 'A' has 2 shares for 3 options"):
        load_goqa(p)
    p.write_text("question,options\nq,x\n")
    with pytest.raises(DataError, match="line 1: header lacks column"):
        load_goqa(p)
    p.write_text('question,selections,options,source\n"q","{broken","[\'x\']",GAS\n')
    with pytest.raises(DataError, match="line 2: selections/options are not Python literals"):
        load_goqa(p)


def test_wvb_respondents_join_and_personas(data_dir: Path) -> None:
    by = load_respondents(FIX / "wvb", countries=["China", "Germany"])
    assert sorted(by) == ["China", "Germany"]
    cn = {r.id: r for r in by["China"]}
    r1 = cn["156070001"]
    # the CLCA paper's persona attributes (H_SETTLEMENT, H_URBRURAL, X003R age bands, ...)
    assert r1.demographics["settlement"] == "Capital city"
    assert r1.demographics["region"] == "Urban"
    assert r1.demographics["gender"] == "Female" and r1.demographics["age"] == "25-34 years"
    assert r1.demographics["education"] == "Bachelor or equivalent (ISCED 6)"
    assert {q: r1.answers[q] for q in ("Q1", "Q2", "Q7", "Q45")} == {"Q1": 1, "Q2": 2, "Q7": 1, "Q45": 3}
    assert "Q2" not in cn["156070002"].answers  # -1 = don't know
    assert cn["156070002"].demographics["household"] == "7 persons or more"
    de2 = {r.id: r for r in by["Germany"]}["276070002"]
    assert "age" not in de2.demographics and "profession" not in de2.demographics  # negative codes: unknown
    assert "settlement" not in de2.demographics
    s1 = sample_respondents(by["China"], 1, seed=5)
    assert s1 == sample_respondents(by["China"], 1, seed=5) and len(s1) == 1
    with pytest.raises(DataError, match="no respondent of Japan"):
        load_respondents(FIX / "wvb", countries=["Japan"])


def test_wvb_missing_and_malformed(tmp_path: Path, data_dir: Path) -> None:
    with pytest.raises(DataError, match=r"full_value_qa\.tsv does not exist"):
        load_respondents(tmp_path)
    (tmp_path / "full_value_qa.tsv").write_text("D_INTERVIEW\tQ1\n1\t1\t9\n")
    (tmp_path / "full_demographic_qa.tsv").write_text("D_INTERVIEW\tB_COUNTRY\n1\t156\n")
    with pytest.raises(DataError, match="line 2: the row has a different number of fields"):
        load_respondents(tmp_path)

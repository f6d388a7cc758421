"""The two answer parsers (``eval.parser``): a table of tricky replies read by hand under each rule set, and the
"done when" check that the paper parser and metrics reproduce the released evaluation code exactly.

The released functions (``parse_answer`` / ``deep_parsing`` / ``final_check``, ``get_oracle_answers``,
``get_kl_div``, ``js_distance``, ``get_person_answer_score`` of ``CLCA/llm_roleplay/evaluation/wvs_evaluation.py``
in UKPLab/arxiv2025-clca, af5b765) are re-implemented here from their description, independently of
:mod:`clca.evaluation.parsers`, and run on the same raw answers as clca's evaluation.
"""

from __future__ import annotations

import json
import math
import random
import re
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError
from scipy.spatial import distance

from clca.evaluation import EvalConfig, evaluate
from clca.evaluation.ask import answer_counts
from clca.evaluation.config import EvalSettings
from clca.evaluation.parsers import ANS2NUM, parse_answer, parse_clca, parse_paper
from clca.llm.base import Chat
from clca.llm.testing import ScriptedBackend
from clca.records import EvalMetrics, QuestionResult

# --------------------------------------------------------------------------------------------------------------
# The questions of the table (WorldValuesBench's wording and the WVS option labels)

Q1 = (
    [1, 2, 3, 4],
    ["Very important", "Rather important", "Not very important", "Not at all important"],
    "On a scale of 1 to 4, 1 meaning 'Very important' and 4 meaning 'Not at all important', how important is "
    "family in your life?",
)
Q7 = (
    [1, 2],
    ["Important", "Not mentioned"],
    "On a scale of 1 to 2, 1 meaning 'Yes' and 2 meaning 'No', is it especially important that children are "
    "encouraged to learn good manners at home?",
)
Q27 = (
    [1, 2, 3, 4],
    ["Agree strongly", "Agree", "Disagree", "Strongly disagree"],
    "On a scale of 1 to 4, 1 meaning 'Strongly agree' and 4 meaning 'Strongly disagree', how strongly do you "
    "agree or disagree with the following statement: One of my main goals in life has been to make my parents "
    "proud?",
)
Q33 = (
    [1, 2, 3, 4, 5],
    ["Agree strongly", "Agree", "Neither agree nor disagree", "Disagree", "Disagree strongly"],
    "On a scale of 1 to 5, 1 meaning 'Strongly agree' and 5 meaning 'Strongly disagree', how strongly do you "
    "agree or disagree with the following statement: When jobs are scarce, men should have more right to a job "
    "than women?",
)
Q43 = (
    [1, 2, 3],
    ["Good thing", "Don't mind", "Bad thing"],
    "On a scale of 1 to 3, 1 meaning 'Good' and 3 meaning 'Bad', how would you rate the following scenario if "
    "it were to happen in the near future: Less importance placed on work in our lives?",
)
QUESTIONS = {"Q1": Q1, "Q7": Q7, "Q27": Q27, "Q33": Q33, "Q43": Q43}

# reply, question, paper parser, clca parser (None = the safeguard / invalid bucket); each expectation follows the
# rules by hand (docs/evaluation.md, "Answer parsers")
TABLE: list[tuple[str, str, int | None, int | None]] = [
    ("3", "Q1", 3, 3),  # a bare in-range integer
    ("3.", "Q1", 3, 3),  # paper: dots removed
    ("ANSWER: 3", "Q1", 3, 3),  # paper: the text after "ANSWER:"; clca: an answer tag
    ("Answer: 3", "Q1", 3, 3),  # paper: not "ANSWER:", but the deep parse takes the part after the colon
    ("2. Not very important", "Q1", None, 2),  # paper: "2 Not very important" is no bare integer
    ("On a scale of 1 to 4, I would say 3", "Q1", None, 3),  # clca: the echoed scale is no answer
    ("Q12: 2", "Q1", 2, 2),  # paper: after the colon; clca: "Q12" is a question reference
    ("question 3: 1", "Q1", 1, 1),
    ("I'd say very important", "Q1", None, 1),  # paper: "very important" is not in ANS2NUM; clca: a label
    ("(2)", "Q1", None, 2),  # paper: the text before "(" is empty
    ("3 (Rather important)", "Q1", 3, 3),  # paper: the text before "("
    ("", "Q1", None, None),
    ("I'm sorry, but I can't answer that.", "Q1", None, None),  # a refusal
    ("7", "Q1", None, None),  # out of range
    ("0", "Q1", None, None),
    ("-1", "Q1", None, None),  # clca: a negative number is no option
    ("3.5", "Q1", None, None),  # paper: "35", out of range; clca: a decimal
    ("1-4", "Q1", None, None),  # a range only
    ("2 or 3", "Q1", None, None),  # clca: two different options, ambiguous
    ("3, definitely 3", "Q1", None, 3),  # clca: the same option twice
    ("I would rate it 3 out of 4", "Q1", None, 3),  # clca: "out of 4" is the scale
    ("3/4", "Q1", None, 3),
    ("\uff13", "Q1", 3, 3),  # a full-width digit: numeric for the paper, folded (NFKC) by clca
    ("三", "Q1", None, None),  # paper: numeric but no float (the released code stops there): safeguard
    ("**3**", "Q1", 3, 3),  # paper: "**" deleted by the deep parse
    ("assistant\n\n3", "Q1", 3, 3),  # paper: "assistant" deleted
    ("I think the answer is 2", "Q1", 2, 2),  # paper: the phrase deleted; clca: an answer tag
    ("The answer is 2", "Q1", None, 2),
    ("3\nFamily is central to my life.", "Q1", 3, 3),  # paper: the first line
    ("Family is central to my life.\n3", "Q1", None, 3),
    ("ANSWER: 3\nANSWER: 1", "Q1", 1, 3),  # paper: after the last "ANSWER:"; clca: the first tag
    (
        "1. Very important\n2. Rather important\n3. Not very important\n4. Not at all important",
        "Q1",
        None,
        None,
    ),
    (Q1[2] + " 2", "Q1", 2, 2),  # the question echoed verbatim: deleted first by both
    ("Very important. Not at all important.", "Q1", None, None),  # clca: two labels, ambiguous
    ("No", "Q1", 2, None),  # paper: ANS2NUM "no" is 2 on every scale; clca: not an anchor of Q1
    ("Yes", "Q7", 1, 1),  # clca: the question's anchor 1 meaning 'Yes'
    ("No.", "Q7", 2, 2),
    ("Yes, definitely", "Q7", None, None),  # clca: a one-word label only as the whole reply
    ("Important", "Q7", None, 1),
    ("It is not important", "Q7", None, None),
    ("4", "Q7", None, None),
    ("Bad", "Q7", None, None),  # paper: ANS2NUM 3 = max + 1, the released code's safeguard bucket
    ("反对", "Q7", None, None),  # paper: ANS2NUM 4 > max + 1 (an IndexError in the released code): safeguard
    ("bad", "Q43", 3, 3),  # clca: the anchor 3 meaning 'Bad'
    ("Good thing", "Q43", None, 1),
    ("Strongly agree", "Q27", None, 1),  # clca: the anchor beats the shorter label "Agree"
    ("I strongly disagree.", "Q27", None, 4),
    ("非常不同意", "Q27", 4, None),  # paper: an ANS2NUM list value is the scale's maximum
    ("非常不同意", "Q33", 5, None),
    ("Stimme überhaupt nicht zu.", "Q33", 5, None),
    ("Totalmente de acuerdo", "Q27", 1, None),
    ("強く賛成", "Q27", 1, None),
    ("sehr wichtig", "Q1", 1, None),
    ("muy importante", "Q1", 1, None),
    ("非常重要", "Q1", 1, None),
    ("1 sí", "Q7", 1, 1),
    ("1 是", "Q7", 1, 1),
    ("3 在1到4的范围内", "Q1", 3, 3),  # paper: final_check's regex; clca: "1到4" is a range
    ("2 1 は非常に重要", "Q1", 2, 2),  # paper: final_check; clca: "1 は" is a scale anchor
    ("2 から", "Q1", 2, 2),
    ("答案：3", "Q1", 3, 3),  # a full-width colon
    ("Die Antwort ist 2.", "Q1", 2, 2),
    ("La respuesta es 4", "Q1", 4, 4),
    ("Ich bin 3", "Q1", None, 3),  # paper: "ich bi" deleted leaves "n 3"
]


@pytest.mark.parametrize(("reply", "qid", "paper", "mine"), TABLE)
def test_parser_table(reply: str, qid: str, paper: int | None, mine: int | None) -> None:
    codes, options, question = QUESTIONS[qid]
    assert parse_paper(reply, codes, question=question) == paper
    assert parse_clca(reply, codes, options=options, question=question) == mine
    for parser, want in (("paper", paper), ("clca", mine)):
        assert parse_answer(reply, codes, parser=parser, options=options, question=question) == want  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("from 1 through 4: 2", 2),
        ("between 1 and 4, say 3", 3),
        ("1–4 ... 2", 2),
        ("1から4で3", 3),
        ("1到4之间选2", 2),
        ("on a scale of 4 I'd give 3", 3),
        ("where 1 is very important, I pick 2", 2),
        ("with 4 being not at all important: 1", 1),
        ("1 meaning 'Very important'", 1),  # the anchor's number is left out, its label read as words
        ("1表示非常重要, 2", 2),
        ("Q 12 asks about family. 3", 3),
        ("item 3, answer 2", 2),  # an answer tag
        ("1st choice: 2", 2),
        ("A1 2", 2),
        ("I am 45 years old, so 2", 2),  # a number that is no option is ignored
        ("ANSWER: 7", None),  # a tagged number that is no option
    ],
)
def test_clca_parser_leaves_out_non_answers(reply: str, expected: int | None) -> None:
    codes, options, question = Q1
    assert parse_clca(reply, codes, options=options, question=question) == expected


def test_table_is_large_and_both_parsers_disagree_somewhere() -> None:
    assert len(TABLE) >= 25
    assert sum(1 for _, _, p, c in TABLE if p != c) >= 10


def test_parser_setting_defaults_and_validation() -> None:
    assert EvalSettings().parser == "clca"
    assert EvalSettings(protocol="paper").parser == "paper"
    assert EvalSettings(protocol="paper", parser="clca").parser == "clca"
    assert EvalSettings(parser="paper").parser == "paper"
    with pytest.raises(ValidationError):
        EvalSettings.model_validate({"parser": "first-number"})


def test_old_records_load_without_the_new_fields(tmp_path: Path) -> None:
    rec = {
        "id": "m|China|plain|Q1",
        "model_tag": "m",
        "model_spec": "s",
        "survey": "wvs7",
        "country": "China",
        "style": "plain",
        "qid": "Q1",
        "question": "q",
        "options": ["a", "b"],
        "codes": [1, 2],
        "ordinal": True,
        "mode": "generate",
        "prompts": [{"messages": [], "distribution": [1.0, 0.0], "generations": ["1"], "parsed": [1]}],
        "model_dist": [1.0, 0.0],
        "human_dist": [0.5, 0.5],
        "metrics": {},
    }
    r = QuestionResult.model_validate(rec)
    assert r.parser == "" and r.prompts[0].parsed_other == []
    m = EvalMetrics.model_validate(
        {"metric_definitions": {}, "configs": {}, "groups": [], "n_records": 0, "notes": []}
    )
    assert m.parsers is None and "parsers" not in m.model_dump(mode="json")


# --------------------------------------------------------------------------------------------------------------
# The released evaluation code, re-implemented from its description (not from clca.evaluation.parsers)

R_ANS2NUM: dict[str, int | list[int]] = {
    "好": 1, "坏": 3, "良い": 1, "悪い": 3, "good": 1, "bad": 3, "gut": 1, "schlecht": 3, "bueno": 1, "malo": 3,
    "yes": 1, "no": 2, "no 2": 2, "是": 1, "1 是": 1, "1 ja": 1, "1 sí": 1, "否": 2, "はい": 1, "いいえ": 2,
    "ja": 1, "nein": 2, "si": 1, "非常不同意": [4, 5], "very不同意": [4, 5], "反对": 4, "非常同意": 1,
    "強く賛成": 1, "強烈に賛成": 1, "強く反対": [4, 5], "stimme überhaupt nicht zu": [4, 5],
    "totalmente en desacuerdo": [4, 5], "en desacuerdo": 4, "stimme voll zu": 1, "totalmente de acuerdo": 1,
    "de acuerdo": 2, "sehr wichtig": 1, "überhaupt nicht wichtig": 4, "非常に重要": 1, "全く重要ではない": 4,
    "非常重要": 1, "非常非常重要": 1, "非常 important": 1, "很重要": 2, "一点也不重要": 4, "非常不重要": 4,
    "muy importante": 1, "nada importante": 4,
}  # fmt: skip
R_JP_PAT = re.compile(r"([0-9])\s(在1到|1表示|1 は|から).*")


def r_deep_parsing(answer: str, min_scale: int, max_scale: int) -> int | str:
    ans = re.split(r"[:：]", answer)[-1]
    for phrase in ["。", "**", "la respuesta es", "宗教", "ich bi", "die antwort ist"]:
        ans = ans.replace(phrase, "")
    ans = ans.split("(")[0].strip()
    if ans.isnumeric():
        idx = int(float(ans))
        if idx < 0:
            idx = 0
        if min_scale <= idx <= max_scale:
            return idx
        return -1
    found: int | list[int] | str = R_ANS2NUM.get(ans, ans)
    if not found:
        return -1
    if isinstance(found, list):
        return max_scale
    return found


def r_final_check(answer: str, min_scale: int, max_scale: int) -> int | str:
    match = R_JP_PAT.match(answer)
    if match:
        first_group = match.group(1)
        if first_group.isdigit():
            if min_scale <= int(first_group) <= max_scale:
                return int(first_group)
            return -1
    return answer


def r_parse_answer(answer: str, min_scale: int, max_scale: int, stats: list[int]) -> int:
    raw_answer = answer.split("ANSWER:")[-1].replace("assistant", "").replace(".", "").strip().split("\n")[0]
    raw_answer = raw_answer.replace("I think the answer is", "").strip()
    if raw_answer.isnumeric():
        idx = int(float(raw_answer))
        if idx < 0:
            idx = 0
        if min_scale <= idx <= max_scale:
            stats[idx] += 1
            return idx
    dp_answer = r_deep_parsing(raw_answer.lower(), min_scale, max_scale)
    if isinstance(dp_answer, str):
        dp_answer = r_final_check(dp_answer, min_scale, max_scale)
    if isinstance(dp_answer, str):
        stats[-1] += 1
        return -1
    stats[dp_answer] += 1
    return dp_answer


def r_oracle(values: list[float], answer_scale_max: int) -> np.ndarray:
    """get_oracle_answers: counts of the non-missing answers, indexed by the answer (+2: index 0, safeguard)."""
    vector = np.zeros(answer_scale_max + 2)
    for v in values:
        if not math.isnan(v):
            vector[int(v)] += 1
    return vector


def r_kl(oracle: np.ndarray, predicted: np.ndarray) -> float:
    """get_kl_div: kl_div(log_softmax(predicted / sum), oracle / sum, batchmean) on a batch of one."""
    o = oracle / oracle.sum()
    q = predicted / predicted.sum()
    log_softmax = q - (q.max() + math.log(float(np.sum(np.exp(q - q.max())))))
    return float(sum(o[i] * (math.log(o[i]) - log_softmax[i]) for i in range(o.size) if o[i] > 0))


def r_js(oracle: np.ndarray, predicted: np.ndarray) -> float:
    """js_distance: scipy's jensenshannon of the two normalised vectors, natural log."""
    return float(distance.jensenshannon(oracle / oracle.sum(), predicted / predicted.sum()))


def r_person_score(row: dict[str, float], model_answers: list[str], qids: list[str]) -> float:
    correct = 0
    for c, qid in enumerate(qids):
        if row[qid] == float(model_answers[c]):
            correct += 1
    return correct / len(qids)


def test_reimplemented_kl_and_js_match_the_torch_float32_originals() -> None:
    """The float64 re-implementation above is the released torch/scipy code (to float32 precision)."""
    import torch

    F = torch.nn.functional
    rng = np.random.default_rng(3)
    for _ in range(50):
        k = int(rng.integers(3, 7))
        oracle = np.append(rng.integers(0, 50, size=k - 1).astype(float) + 1, 0.0)
        predicted = rng.integers(0, 30, size=k).astype(float)
        predicted[-1] += 1
        o = torch.tensor(oracle, dtype=torch.float32)
        p = torch.tensor(predicted, dtype=torch.float32)
        o_n, q_n = o / o.sum(), p / p.sum()
        kl = F.kl_div(F.log_softmax(q_n.unsqueeze(0), dim=1), o_n.unsqueeze(0), reduction="batchmean").item()
        js = distance.jensenshannon(o_n.numpy(), q_n.numpy()).item()
        assert r_kl(oracle, predicted) == pytest.approx(kl, abs=1e-6)
        assert r_js(oracle, predicted) == pytest.approx(js, abs=1e-6)


# --------------------------------------------------------------------------------------------------------------
# 1000 seeded replies through clca's evaluation (protocol paper) against the re-implementation

QIDS = [f"Q{i}" for i in range(1, 37)] + ["Q41", "Q43", "Q44", "Q45"]  # 40 questions x 25 personas = 1000
SCALE = re.compile(r"On a scale of 1 to (\d+)")
DEMO_HEADER = "D_INTERVIEW\tB_COUNTRY\tH_SETTLEMENT\tH_URBRURAL\tN_REGION_ISO\tQ260\tQ262\tX003R\tQ263\tQ273\tQ270\tQ275\tQ279\tQ281\tQ287"
ENGLISH_WORDS = [
    "Very important",
    "Not at all important",
    "Strongly disagree",
    "Agree",
    "Good thing",
    "Mentioned",
]


def _reply(rng: random.Random, k: int, question: str) -> str:
    """One reply: clean integers, words of every ANS2NUM language, echoed scales, junk."""
    r, s = rng.randint(1, k), rng.randint(1, k)
    kind = rng.randrange(9)
    if kind <= 1:
        return rng.choice(
            [f"{r}", f"{r}.", f" {r}\n", f"ANSWER: {r}", f"**{r}**", f"{r}\nBecause it matters."]
        )
    if kind == 2:
        return rng.choice(
            [f"{r} (Rather important)", f"I think the answer is {r}", f"assistant\n\n{r}", f"Answer: {r}",
             f"答案：{r}", f"Die Antwort ist {r}.", f"La respuesta es {r}", f"{chr(0xFF10 + r)}"]
        )  # fmt: skip
    if kind == 3:  # words in the five languages (no value beyond max + 1: the released code stops there)
        words = [w for w, v in R_ANS2NUM.items() if isinstance(v, list) or v <= k + 1]
        w = rng.choice(words)
        return rng.choice([w, w.capitalize(), w + ".", w.upper()])
    if kind == 4:
        return rng.choice(ENGLISH_WORDS) + rng.choice(["", ".", "!"])
    if kind == 5:  # echoed scales and question numbers
        return rng.choice(
            [f"On a scale of 1 to {k}, I would say {r}", f"{r} 在1到{k}之间", f"{r} 1表示非常重要", f"{r} から",
             f"{question} {r}", f"1-{k}", f"{r} out of {k}", f"Q{rng.randint(1, 45)}: {r}", f"question {s}: {r}"]
        )  # fmt: skip
    if kind == 6:  # junk
        return rng.choice(
            ["", "I cannot answer that.", f"({r})", f"{r} or {s}", "-1", "3.5", f"{k + 1}", "0", "Ich bin 2",
             f"{r}. Not very important", "1. Very important\n2. Rather important"]
        )  # fmt: skip
    return f"{r}"


def _write_respondents(folder: Path, n: int, rng: random.Random) -> None:
    """A WorldValuesBench pair of files: ``n`` Chinese respondents, answers in range or missing (empty)."""
    folder.mkdir()
    scale = {**dict.fromkeys([f"Q{i}" for i in range(1, 7)] + [f"Q{i}" for i in range(27, 33)], 4),
             **dict.fromkeys([f"Q{i}" for i in range(7, 27)], 2), **dict.fromkeys([f"Q{i}" for i in range(33, 42)], 5),
             **dict.fromkeys(["Q43", "Q44", "Q45"], 3)}  # fmt: skip
    qs = [f"Q{i}" for i in range(1, 46) if i != 42]
    vrows = ["\t".join(["D_INTERVIEW", *qs])]
    drows = [DEMO_HEADER]
    for i in range(n):
        rid = str(156070001 + i)
        vals = ["" if rng.random() < 0.08 else str(rng.randint(1, scale[q])) for q in qs]
        vrows.append("\t".join([rid, *vals]))
        drows.append(f"{rid}\t156\t1\t1\t156002\t2\t34\t2\t1\t1\t3\t6\t1\t1\t3")
    (folder / "full_value_qa.tsv").write_text("\n".join(vrows) + "\n", encoding="utf-8")
    (folder / "full_demographic_qa.tsv").write_text("\n".join(drows) + "\n", encoding="utf-8")


def _released_values(folder: Path) -> dict[str, dict[str, float]]:
    """The value file as the released code's DataFrame holds it: id -> question -> answer (NaN when empty)."""
    lines = (folder / "full_value_qa.tsv").read_text(encoding="utf-8").splitlines()
    header = lines[0].split("\t")
    return {
        cells[0]: {q: float(v) if v else math.nan for q, v in zip(header[1:], cells[1:], strict=True)}
        for cells in (line.split("\t") for line in lines[1:])
    }


def test_paper_parser_and_metrics_equal_the_released_code(tmp_path: Path, data_dir: Path) -> None:
    rng = random.Random(20250402)
    _write_respondents(tmp_path / "wvb", 80, rng)

    def reply(chat: Chat) -> str:
        user = chat[-1]["content"]
        match = SCALE.search(user)
        assert match, user
        question = user.split("QUESTION: ", 1)[1].rsplit(" ANSWER:", 1)[0]
        return _reply(random.Random(f"{chat[0]['content']}|{user}"), int(match.group(1)), question)

    cfg = EvalConfig.model_validate(
        {
            "out_dir": tmp_path / "ev",
            "model_tag": "m",
            "protocol": "paper",
            "styles": ["paper_persona"],
            "respondents": str(tmp_path / "wvb"),
            "personas": 25,
            "countries": ["China"],
            "questions": ",".join(QIDS),
            "batch_size": 250,
            "bootstrap": 10,
        }
    )
    assert cfg.parser == "paper"
    res = evaluate(ScriptedBackend(reply, spec="scripted:test", fingerprint="f"), cfg)
    recs = {r.qid: r for r in res.records}
    assert sorted(recs) == sorted(QIDS)

    # the released evaluation loop on the same raw answers
    df = _released_values(tmp_path / "wvb")
    personas = [p.persona_id for p in recs["Q1"].prompts]
    assert len(personas) == 25 and all(p is not None for p in personas)
    results = {q: [0] * (max(recs[q].codes) + 2) for q in QIDS}
    per_person: dict[str, list[str]] = {}
    answers = 0
    for pid in personas:
        assert pid is not None
        per_person[pid] = []
        for q in QIDS:
            rec = recs[q]
            prompt = next(p for p in rec.prompts if p.persona_id == pid)
            (raw,) = prompt.generations
            answer = raw.replace(rec.question, "")
            idx = r_parse_answer(answer, min(rec.codes), max(rec.codes), results[q])
            per_person[pid].append(str(idx))
            # the same reading, answer by answer (-1 and ANS2NUM values beyond the scale: the safeguard bucket)
            assert prompt.parsed == [idx if idx in rec.codes else None], (raw, idx, prompt.parsed)
            answers += 1
    assert answers == 1000

    kls, jsds = [], []
    for q in QIDS:
        rec = recs[q]
        counts, invalid = answer_counts(rec.codes, rec.prompts)
        assert [*counts, invalid] == results[q][1:]  # the released count vector, index 0 dropped
        oracle = r_oracle([row[q] for row in df.values()], max(rec.codes))[1:]
        predicted = np.asarray(results[q][1:], dtype=np.float64)
        assert rec.human_dist == pytest.approx(list(oracle[:-1] / oracle.sum()), abs=1e-15)
        kl, js = r_kl(oracle, predicted), r_js(oracle, predicted)
        assert rec.metrics["clca_kl"] == pytest.approx(kl, abs=1e-12)
        assert rec.metrics["paper_jsd"] == pytest.approx(js, abs=1e-12)
        kls.append(kl)
        jsds.append(js)
    scores = [r_person_score(df[pid], per_person[pid], QIDS) for pid in per_person]
    accuracy = sum(scores) / len(scores)
    mine = [float(recs[q].metrics["accuracy"] or 0.0) for q in QIDS]
    assert sum(mine) / len(mine) == pytest.approx(accuracy, abs=1e-12)

    # metrics.json: the same means, which parser scored them, and how often clca's parser reads otherwise
    doc = json.loads((tmp_path / "ev" / "metrics.json").read_text(encoding="utf-8"))
    group = next(g for g in doc["groups"] if g["country"] == "China" and g["style"] == "paper_persona")
    assert group["metrics"]["clca_kl"]["mean"] == pytest.approx(sum(kls) / len(kls), abs=1e-12)
    assert group["metrics"]["paper_jsd"]["mean"] == pytest.approx(sum(jsds) / len(jsds), abs=1e-12)
    assert group["metrics"]["accuracy"]["mean"] == pytest.approx(accuracy, abs=1e-12)
    gens = [(p.generations[0], r) for r in recs.values() for p in r.prompts]
    differ = sum(
        1
        for g, r in gens
        if parse_paper(g, r.codes, question=r.question)
        != parse_clca(g, r.codes, options=r.options, question=r.question)
    )
    summary = doc["parsers"]["m"]
    assert summary["parser"] == "paper" and summary["other"] == "clca"
    assert summary["answers"] == 1000 and summary["disagreements"] == differ and summary["unchecked"] == 0
    assert summary["disagreement_share"] == pytest.approx(differ / 1000)
    assert group["metrics"]["parser_disagreement"]["mean"] == pytest.approx(differ / 1000, abs=1e-12)
    # the mix exercises every path: safeguard answers, words, and answers the two parsers read differently
    assert 100 < sum(results[q][-1] for q in QIDS) < 600
    assert differ > 100
    assert any(w in g.lower() for g, _ in gens for w in ANS2NUM if not w.isascii())

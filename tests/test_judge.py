"""Judge: the paper's three questions (full scenario shown), typed answers on messy outputs, the filter rule
truth table, retries with new seeds, batching, resume; real-model e2e."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from stage_helpers import Scripted, make_run

from clca.judge import (
    PROMPT_VERSION,
    AlignmentAnswer,
    MetaAnswer,
    QualityAnswer,
    judge_episodes,
    normalise_confidence,
    parse_alignment,
    parse_meta,
    parse_quality,
)
from clca.judge.config import FilterRule, JudgeConfig
from clca.llm.base import Chat
from clca.llm.structured import answer_format, answer_schema


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Quality: bad\nConfidence: very confident", ("bad", "very confident")),
        ("**Quality:** Good (Very Confident.)", ("good", "very confident")),
        ("1. Quality: GOOD\n2. Confidence: fairly sure", ("good", "confident")),
        ('Sure:\n```json\n{"quality": "bad", "confidence": "not sure",}\n```', ("bad", "not sure")),
        ("quality - bad\nquality confidence = I'm highly confident", ("bad", "very confident")),
    ],
)
def test_parse_quality_messy(text: str, expected: tuple[str, str]) -> None:
    r = parse_quality(text)
    assert (r.quality, r.confidence) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Culture alignment: not aligned to the culture\nConfidence: confident",
            "not aligned to the culture",
        ),
        ("Culture alignment: aligned to the culture\nConfidence: confident", "aligned to the culture"),
        ("Alignment: misaligned (unsure)\nConfidence: not sure", "not aligned to the culture"),
        ('{"culture alignment": "aligned", "confidence": "very confident"}', "aligned to the culture"),
    ],
)
def test_parse_alignment(text: str, expected: str) -> None:
    assert parse_alignment(text).alignment == expected


def test_parse_meta_and_errors() -> None:
    r = parse_meta(
        "Meta label: bad\nConfidence: Very confident\nCritic: the first judgement missed repetition."
    )
    assert (r.meta_label, r.confidence) == ("bad", "very confident") and "repetition" in r.critic
    r = parse_meta('{"meta_label": "good", "confidence": "confident", "critique": "fine"}')
    assert (r.meta_label, r.critic) == ("good", "fine")
    with pytest.raises(ValueError, match="could not read meta label, confidence"):
        parse_meta("The conversation is fine I think.")
    with pytest.raises(ValueError, match="could not read confidence"):
        parse_quality("Quality: bad")


def test_answer_formats_derive_from_the_models() -> None:
    assert (
        answer_format(QualityAnswer) == "Quality: <good|bad>\nConfidence: <very confident|confident|not sure>"
    )
    assert answer_format(AlignmentAnswer).startswith(
        "Culture alignment: <aligned to the culture|not aligned to the culture>"
    )
    assert answer_format(MetaAnswer).splitlines()[0] == "Meta label: <good|bad>"
    assert answer_schema(MetaAnswer)["required"] == ["meta_label", "confidence", "critic"]


def test_normalise_confidence() -> None:
    assert normalise_confidence("Very confident!") == "very confident"
    assert normalise_confidence("(not very confident)") == "not sure"
    assert normalise_confidence("fairly sure") == "confident"
    assert normalise_confidence("banana") is None


def test_filter_rule_truth_table() -> None:
    rule = FilterRule()
    labels = [None, "good", "bad"]
    confs = [None, "very confident", "confident", "not sure"]
    for q, qc, m, mc in itertools.product(labels, confs, labels, confs):
        expected_drop = (q == "bad" and qc == "very confident") or (m == "bad" and mc == "very confident")
        assert rule.keep(quality=q, quality_confidence=qc, meta=m, meta_confidence=mc) is (not expected_drop)
    # alignment is ignored by the paper's rule, usable when configured
    kw = {
        "quality": "good",
        "quality_confidence": "confident",
        "meta": "good",
        "meta_confidence": "confident",
    }
    assert rule.keep(**kw, alignment="not aligned", alignment_confidence="very confident")
    strict = FilterRule(
        drop_not_aligned=frozenset({"very confident"}),
        drop_quality_bad=frozenset({"very confident", "confident"}),
    )
    assert not strict.keep(**kw, alignment="not aligned", alignment_confidence="very confident")
    assert not strict.keep(quality="bad", quality_confidence="confident", meta=None, meta_confidence=None)
    # errors: default keep, configurable; parsed evidence to drop wins over an error
    assert rule.keep(quality=None, quality_confidence=None, meta=None, meta_confidence=None, error="x")
    assert not FilterRule(keep_on_error=False).keep(
        quality=None, quality_confidence=None, meta=None, meta_confidence=None, error="x"
    )
    assert not rule.keep(
        quality="bad", quality_confidence="very confident", meta=None, meta_confidence=None, error="x"
    )


def _reply(chat: Chat) -> str:
    user = chat[-1]["content"]
    repetitive = "Yes, very nice tea." in user
    if "Meta label:" in user:
        if repetitive:
            return "Meta label: bad\nConfidence: very confident\nCritic: repeats itself."
        return "Meta label: good\nConfidence: confident\nCritic: fair."
    if "Culture alignment:" in user:
        return "Culture alignment: aligned to the culture\nConfidence: " + (
            "not sure" if repetitive else "confident"
        )
    return (
        "Quality: bad\nConfidence: confident" if repetitive else "Quality: good\nConfidence: very confident"
    )


def test_judge_sees_the_whole_scenario_and_asks_the_paper_questions(tmp_path: Path, data_dir: Path) -> None:
    run = make_run(tmp_path)
    backend = Scripted(_reply)
    s = judge_episodes(backend, run, JudgeConfig(), progress=False)
    assert (s.episodes, s.judged, s.kept, s.dropped, s.errors) == (3, 3, 1, 2, 1)
    assert backend.batches == [2, 2, 2]  # quality, alignment, meta: one batch each for the chunk
    quality, alignment, meta = backend.chats[0:2], backend.chats[2:4], backend.chats[4:6]
    for chat in backend.chats:
        text = chat[-1]["content"]
        # the judge sees the full scenario, goals and secrets included (as in the paper)
        assert "SECRET-LI" in text and "GOAL-ZHANG" in text and "Li Wei and Zhang Min are friends." in text
        assert "Person 2: [non-verbal] nods politely" in text or "very nice tea" in text
        assert "Conversation:\nTurn: 1\nPerson 1: " in text  # the paper's dialogue format
        assert '"person1": {' in text and '"person2": {' in text
    assert all(
        "The conversation is bad in quality if it has many repeating sentences" in c[-1]["content"]
        for c in quality
    )
    assert all("aligns with the Chinese culture" in c[-1]["content"] for c in alignment)
    for c in meta:
        text = c[-1]["content"]
        assert "meta label on the conversation's alignment to the Chinese culture" in text
        assert "don't judge the goal achievement" in text and "Previous judgements:\nQuality:" in text
    js = {j.id: j for j in run.judgements()}
    ok = js["china-s1:0"]
    assert ok.keep and (ok.quality, ok.alignment, ok.meta_confidence) == ("good", "aligned", "confident")
    assert ok.critique == "fair." and ok.attempts == 3 and ok.prompt_version == PROMPT_VERSION
    assert ok.raw["meta"][0].startswith("Meta label")
    assert not js["china-s2:0"].keep and js["china-s2:0"].meta == "bad"
    assert not js["china-s1:1"].keep and js["china-s1:1"].error
    before = run.judgements_file.read_text()
    again = judge_episodes(backend, run, JudgeConfig(), progress=False)
    assert (again.skipped, again.judged) == (3, 0) and backend.batches == [2, 2, 2]
    assert run.judgements_file.read_text() == before


def test_unparseable_answers_are_reasked_with_new_seeds_then_kept_with_error(
    tmp_path: Path, data_dir: Path
) -> None:
    run = make_run(tmp_path)
    backend = Scripted(lambda c: "I cannot judge this.")
    s = judge_episodes(backend, run, JudgeConfig(max_retries=2), progress=False)
    js = {j.id: j for j in run.judgements()}
    assert js["china-s1:0"].keep and "could not read" in (js["china-s1:0"].error or "")
    assert s.errors == 3 and s.llm.retries == 2 * 2 * 3 and js["china-s1:0"].attempts == 9
    seeds = [c[2] for c in backend.calls]
    assert seeds[0] is None and seeds[1] == [1, 1] and seeds[2] == [2, 2]  # retries: new seed, sampled
    assert backend.calls[1][1].temperature > 0
    run2 = make_run(tmp_path / "b")
    judge_episodes(
        Scripted("?"), run2, JudgeConfig(rule=FilterRule(keep_on_error=False), max_retries=0), progress=False
    )
    assert not any(j.keep for j in run2.judgements())


def test_a_retry_can_succeed(tmp_path: Path, data_dir: Path) -> None:
    run = make_run(tmp_path)

    def flaky(chat: Chat, seed: int | None) -> str:
        return "hmm" if seed is None else _reply(chat)

    s = judge_episodes(Scripted(flaky), run, JudgeConfig(max_retries=1), progress=False)
    assert s.errors == 1 and s.llm.failures == 0  # only the episode without utterances
    assert {j.id for j in run.judgements() if j.keep} == {"china-s1:0"}


@pytest.mark.slow
def test_judge_and_intents_real_embedded_model(tmp_path: Path, data_dir: Path, call_cache_path: Path) -> None:
    from clca.intents import label_intents
    from clca.intents.config import IntentsConfig
    from clca.intents.stage import LABELLED_ACTIONS
    from clca.llm.cache import CallCache
    from clca.llm.registry import load_backend
    from clca.rundir import RunDir

    backend = load_backend("embedded:smollm2-135m", cache=CallCache(call_cache_path))
    run = make_run(tmp_path)
    s = judge_episodes(backend, run, JudgeConfig(max_new_tokens=16, max_retries=0), progress=False)
    js = run.judgements()
    assert s.judged == 3 and len(js) == 3
    for j in js:
        if j.id == "china-s1:1":  # no utterance: dropped without a call
            assert not j.keep and not j.raw
            continue
        assert j.raw["quality"] and j.raw["meta"] and j.model == backend.spec
        assert j.keep == FilterRule().keep(
            quality=j.quality,
            quality_confidence=j.quality_confidence,
            meta=j.meta,
            meta_confidence=j.meta_confidence,
            error=j.error,
        )
    # force one real episode to be kept so intents run on them regardless of the tiny model's verdicts
    forced = RunDir(run.path / "forced")
    forced.path.mkdir()
    for f in ("scenarios_file", "episodes_file"):
        getattr(forced, f).write_text(getattr(run, f).read_text())
    forced.judgement_store().extend([j.model_copy(update={"keep": j.id == "china-s1:0"}) for j in js])
    si = label_intents(backend, forced, IntentsConfig(max_new_tokens=16, max_retries=0), progress=False)
    ints = forced.intents()
    (kept,) = [e for e in forced.episodes() if e.id == "china-s1:0"]
    labelled = [t for t in kept.turns if t.action in LABELLED_ACTIONS]
    assert any(t.action == "leave" for t in labelled)  # the leave is labelled too (intent-v3)
    assert si.utterances == len(labelled) == len(ints) == 4
    assert all((i.intent is None) == (i.error is not None) and i.raw for i in ints)


def test_judge_resume_after_crash_same_file(tmp_path: Path, data_dir: Path) -> None:
    """Crash after the first chunk; the rerun gives the same file as an uninterrupted run, no duplicates."""
    run_a, run_b = make_run(tmp_path / "a"), make_run(tmp_path / "b")
    with pytest.raises(RuntimeError, match="simulated crash"):  # 3 calls for chunk 1, chunk 2 dies
        judge_episodes(Scripted(_reply, crash_after=3), run_a, JudgeConfig(), batch_size=1, progress=False)
    assert len(run_a.judgements()) == 1
    judge_episodes(Scripted(_reply), run_a, JudgeConfig(), batch_size=1, progress=False)
    judge_episodes(Scripted(_reply), run_b, JudgeConfig(), batch_size=1, progress=False)
    assert run_a.judgements_file.read_text() == run_b.judgements_file.read_text()
    assert len(run_a.judgements_file.read_text().splitlines()) == 3


def test_a_copied_answer_format_is_no_answer() -> None:
    with pytest.raises(ValueError, match="could not read culture alignment"):
        parse_alignment(
            "Culture alignment: 1. aligned to the culture|not aligned to the culture\nConfidence: sure"
        )


def test_pairs_transcript_is_the_papers_judge_format() -> None:
    from clca.records import Turn
    from clca.render import transcript

    turns = [
        Turn(speaker=0, name="Li Wei", action="speak", text="Hello."),
        Turn(speaker=1, name="Zhang Min", action="non-verbal", text="nods"),
        Turn(speaker=0, name="Li Wei", action="none", text=""),
        Turn(speaker=1, name="Zhang Min", action="leave", text="Bye."),
    ]
    assert transcript(turns, style="pairs") == (
        "Turn: 1\nPerson 1: Hello.\nPerson 2: [non-verbal] nods\nTurn: 2\nPerson 2: "
        + transcript(turns[3:], style="lines").split(": ", 1)[1]
    )

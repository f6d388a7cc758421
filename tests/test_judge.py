"""Judge: parser on messy outputs, filter rule truth table, batching, privacy, resume; real-model e2e."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from stage_helpers import Scripted, make_run

from clca.judge import FilterRule, judge_episodes, normalise_confidence, parse_step1, parse_step2
from clca.llm.base import Chat
from clca.records import Judgement
from clca.runs import JsonlStore


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Quality: bad (very confident)\nCulture: aligned (confident)\nReason: repeats.",
            ("bad", "very confident", "aligned", "confident"),
        ),
        (
            "**Quality:** Good (Very Confident.)\n**Culture:** Not aligned - not sure",
            ("good", "very confident", "not aligned", "not sure"),
        ),
        (
            "1. Quality: GOOD\nQuality confidence: confident\n2. Cultural alignment: aligned\nAlignment confidence: very confident",
            ("good", "confident", "aligned", "very confident"),
        ),
        (
            'Sure:\n```json\n{"quality": "bad", "quality_confidence": "not sure", "alignment": "not aligned", "alignment_confidence": "Very confident",}\n```',
            ("bad", "not sure", "not aligned", "very confident"),
        ),
        (
            "quality - bad, I'm highly confident\nculture = misaligned (unsure)",
            ("bad", "very confident", "not aligned", "not sure"),
        ),
    ],
)
def test_parse_step1_messy(text: str, expected: tuple[str, ...]) -> None:
    r = parse_step1(text)
    assert (r.quality, r.quality_confidence, r.alignment, r.alignment_confidence) == expected
    assert r.error is None


def test_parse_step1_errors() -> None:
    r = parse_step1("The conversation is fine I think.")
    assert r.quality is None and r.error and "quality" in r.error
    r = parse_step1("Quality: bad\nCulture: aligned (confident)")
    assert (
        r.quality == "bad"
        and r.quality_confidence is None
        and r.error == "step 1: could not parse quality confidence"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Critique: the judgement is fair.\nMeta: bad (very confident)", ("bad", "very confident")),
        ("CRITIQUE: ok\n**Meta label**: Good. Confidence: confident", ("good", "confident")),
        ('{"critique": "x", "meta": "good", "meta_confidence": "not sure"}', ("good", "not sure")),
        ("Final verdict: bad\nConfidence: Very confident", ("bad", "very confident")),
    ],
)
def test_parse_step2_messy(text: str, expected: tuple[str, str]) -> None:
    r = parse_step2(text)
    assert (r.meta, r.meta_confidence) == expected and r.error is None


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
    assert rule.keep(
        quality="good",
        quality_confidence="confident",
        meta="good",
        meta_confidence="confident",
        alignment="not aligned",
        alignment_confidence="very confident",
    )
    strict = FilterRule(
        drop_not_aligned=frozenset({"very confident"}),
        drop_quality_bad=frozenset({"very confident", "confident"}),
    )
    assert not strict.keep(
        quality="good",
        quality_confidence="confident",
        meta="good",
        meta_confidence="confident",
        alignment="not aligned",
        alignment_confidence="very confident",
    )
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
    last = chat[-1]["content"]
    conv = chat[1]["content"]
    repetitive = "Yes, very nice tea." in conv
    if last.startswith("Now critique"):
        return (
            "Critique: fair.\nMeta: bad (very confident)"
            if repetitive
            else "Critique: fair.\nMeta: good (confident)"
        )
    return (
        "Quality: bad (confident)\nCulture: aligned (not sure)"
        if repetitive
        else "Quality: good (very confident)\nCulture: aligned (confident)"
    )


def test_judge_run_batches_privacy_and_resume(tmp_path: Path, data_dir: Path) -> None:
    run = make_run(tmp_path)
    backend = Scripted(_reply)
    s = judge_episodes(backend, run, progress=False, data_dir=data_dir)
    assert (s.episodes, s.judged, s.kept, s.dropped, s.errors) == (3, 3, 1, 2, 1)
    assert backend.batches == [2, 2]  # step 1 as one batch, step 2 as one batch
    for chat in backend.chats:
        text = "\n".join(m["content"] for m in chat)
        assert "SECRET" not in text and "GOAL-" not in text
        assert "Zhang Min [non-verbal]: nods politely" in text or "very nice tea" in text
    js = {j.id: j for j in JsonlStore(run / "judgements.jsonl", Judgement).all()}
    assert (
        js["china-s1:0"].keep
        and js["china-s1:0"].quality == "good"
        and js["china-s1:0"].meta_confidence == "confident"
    )
    assert not js["china-s2:0"].keep and js["china-s2:0"].raw_step2.startswith("Critique")
    assert not js["china-s1:1"].keep and js["china-s1:1"].error
    before = (run / "judgements.jsonl").read_text()
    again = judge_episodes(backend, run, progress=False, data_dir=data_dir)
    assert (again.skipped, again.judged) == (3, 0) and backend.batches == [2, 2]
    assert (run / "judgements.jsonl").read_text() == before


def test_judge_unparseable_kept_with_error(tmp_path: Path, data_dir: Path) -> None:
    run = make_run(tmp_path)
    s = judge_episodes(Scripted(lambda c: "I cannot judge this."), run, progress=False, data_dir=data_dir)
    js = {j.id: j for j in JsonlStore(run / "judgements.jsonl", Judgement).all()}
    assert js["china-s1:0"].keep and "could not parse" in (js["china-s1:0"].error or "")
    assert s.errors == 3
    run2 = make_run(tmp_path / "b")
    judge_episodes(
        Scripted(lambda c: "?"), run2, rule=FilterRule(keep_on_error=False), progress=False, data_dir=data_dir
    )
    assert not any(j.keep for j in JsonlStore(run2 / "judgements.jsonl", Judgement).all())


@pytest.mark.slow
def test_judge_and_intents_real_embedded_model(tmp_path: Path, data_dir: Path, call_cache_path: Path) -> None:
    from clca.intents import label_intents
    from clca.llm.cache import CallCache
    from clca.llm.registry import load_backend
    from clca.records import Intent

    backend = load_backend("embedded:smollm2-135m", cache=CallCache(call_cache_path))
    run = make_run(tmp_path)
    s = judge_episodes(backend, run, progress=False, max_new_tokens=16, data_dir=data_dir)
    js = JsonlStore(run / "judgements.jsonl", Judgement).all()
    assert s.judged == 3 and len(js) == 3
    for j in js:
        if j.id == "china-s1:1":  # no utterance: dropped without a call
            assert not j.keep and not j.raw_step1
            continue
        assert j.raw_step1 and j.raw_step2 and j.model == backend.spec
        assert j.keep == FilterRule().keep(
            quality=j.quality,
            quality_confidence=j.quality_confidence,
            meta=j.meta,
            meta_confidence=j.meta_confidence,
            error=j.error,
        )
    # force one real episode to be kept so intents run on them regardless of the tiny model's verdicts
    forced = run / "forced"
    forced.mkdir()
    for name in ("scenarios.jsonl", "episodes.jsonl"):
        (forced / name).write_text((run / name).read_text())
    JsonlStore(forced / "judgements.jsonl", Judgement).extend(
        [j.model_copy(update={"keep": j.id == "china-s1:0"}) for j in js]
    )
    si = label_intents(backend, forced, progress=False, max_new_tokens=16, data_dir=data_dir)
    ints = JsonlStore(forced / "intents.jsonl", Intent).all()
    assert si.utterances == 3 and len(ints) == 3
    assert all((i.intent is None) == (i.error is not None) and i.raw for i in ints)


def test_judge_resume_after_crash_same_file(tmp_path: Path, data_dir: Path) -> None:
    """Crash after the first chunk; the rerun gives the same file as an uninterrupted run, no duplicates."""
    from collections.abc import Sequence

    from clca.llm.base import GenerationParams

    class Crashing(Scripted):
        def generate(
            self, chats: Sequence[Chat], params: GenerationParams, seeds: Sequence[int] | None = None
        ) -> list[str]:
            if len(self.batches) == 2:  # step 1 and step 2 of chunk 1 done, chunk 2 dies
                raise KeyboardInterrupt
            return super().generate(chats, params, seeds)

    run_a, run_b = make_run(tmp_path / "a"), make_run(tmp_path / "b")
    with pytest.raises(KeyboardInterrupt):
        judge_episodes(Crashing(_reply), run_a, progress=False, batch_size=1, data_dir=data_dir)
    assert len(JsonlStore(run_a / "judgements.jsonl", Judgement).all()) == 1
    judge_episodes(Scripted(_reply), run_a, progress=False, batch_size=1, data_dir=data_dir)
    judge_episodes(Scripted(_reply), run_b, progress=False, batch_size=1, data_dir=data_dir)
    assert (run_a / "judgements.jsonl").read_text() == (run_b / "judgements.jsonl").read_text()
    assert len((run_a / "judgements.jsonl").read_text().splitlines()) == 3

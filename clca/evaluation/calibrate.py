"""The sampling check of log-prob scoring (``eval.check_sampling``): sample N answers per prompt at temperature
1, parse them as generation mode does (``eval.parser``), and compare their histogram with the scored
distribution, next to the JS distance that sampling noise alone would give (``calibration.jsonl``; means per
model in ``metrics.json``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from clca.evaluation import metrics as M
from clca.evaluation.ask import answer_parser
from clca.evaluation.config import EvalConfig
from clca.evaluation.parsers import parse_answer
from clca.evaluation.styles import Style, resolve_styles, split_name
from clca.llm.base import Backend, Chat, GenerationParams
from clca.records import CalibrationRecord, CalibrationSummary, QuestionResult
from clca.rundir import EvalDir

NOISE_DRAWS = 400


def noise_jsd(dist: Sequence[float], n: int, *, draws: int = NOISE_DRAWS, seed: int = 0) -> float:
    """Mean JS distance between ``dist`` and the histogram of ``n`` draws from it (sampling noise alone)."""
    import numpy as np

    p = np.asarray(dist, dtype=np.float64)
    p = p / p.sum()
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(n, p, size=draws)
    return float(np.mean([M.js_distance(c / n, p) for c in counts]))


def check_sampling(
    backend: Backend, records: Sequence[QuestionResult], cfg: EvalConfig
) -> list[CalibrationRecord]:
    """The calibration check (``check_sampling`` answers per prompt, temperature 1, parsed as generate mode
    does) for the records not yet checked; appended to ``calibration.jsonl``."""
    store = EvalDir(cfg.out_dir).calibration_store()
    done = store.ids()
    todo = [r for r in records if r.id not in done]
    n = cfg.check_sampling
    by_name = {s.name: s for s in resolve_styles(cfg.styles, [str(p) for p in cfg.style_files])}

    def by_style(name: str) -> Style:  # a translated style (paper_persona@zh) reads as its English one
        return by_name[split_name(name)[0]]

    out: list[CalibrationRecord] = []
    for start in range(0, len(todo), max(1, cfg.batch_size)):
        chunk = todo[start : start + cfg.batch_size]
        chats: list[Chat] = []
        for r in chunk:
            for pr in r.prompts:
                chats += [pr.messages] * n  # type: ignore[list-item]
        extra = max(
            (by_style(r.style).max_reasoning_tokens for r in chunk if by_style(r.style).reasoning), default=0
        )
        params = GenerationParams(max_new_tokens=cfg.max_new_tokens + extra, temperature=1.0, seed=cfg.seed)
        seeds = [cfg.seed + k for _ in range(len(chats) // n) for k in range(n)]
        texts = backend.generate(chats, params, seeds=seeds)
        pos = 0
        recs: list[CalibrationRecord] = []
        for r in chunk:
            m = len(r.prompts) * n
            parsed = [
                parse_answer(
                    t,
                    r.codes,
                    parser=answer_parser(cfg, by_style(r.style)),
                    reasoning=by_style(r.style).reasoning,
                    options=r.options,
                    question=r.question,
                )
                for t in texts[pos : pos + m]
            ]
            pos += m
            valid = [c for c in parsed if c is not None]
            hist = [sum(1 for c in valid if c == code) / len(valid) if valid else 0.0 for code in r.codes]
            scored = list(r.model_dist)
            recs.append(
                CalibrationRecord(
                    id=r.id,
                    model_tag=r.model_tag,
                    samples=m,
                    valid=len(valid),
                    unparseable_share=1.0 - len(valid) / m,
                    sampled=hist,
                    scored=scored,
                    jsd=M.js_distance(hist, scored) if valid else None,
                    jsd_noise=noise_jsd(scored, len(valid), seed=cfg.seed) if valid else None,
                )
            )
        store.extend(recs)
        out += recs
    return out


def calibration_summary(out_dir: Path) -> dict[str, CalibrationSummary] | None:
    """Means of the calibration check per model tag (``None`` when it was not run)."""
    ed = EvalDir(out_dir)
    if not ed.calibration_file.exists():
        return None
    by_tag: dict[str, list[CalibrationRecord]] = {}
    for r in ed.calibration_store().read():
        by_tag.setdefault(r.model_tag, []).append(r)
    out: dict[str, CalibrationSummary] = {}
    for tag, recs in by_tag.items():
        ok = [r for r in recs if r.jsd is not None and r.jsd_noise is not None]
        out[tag] = CalibrationSummary(
            questions=len(recs),
            mean_jsd_sampled_vs_scored=sum(r.jsd or 0.0 for r in ok) / len(ok) if ok else None,
            mean_jsd_sampling_noise=sum(r.jsd_noise or 0.0 for r in ok) / len(ok) if ok else None,
            mean_unparseable_share=sum(r.unparseable_share for r in recs) / len(recs),
        )
    return out

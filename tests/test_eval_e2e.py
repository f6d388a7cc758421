"""End-to-end evaluation through the CLI on the real embedded SmolLM2 (2 countries × 3 questions × 2 styles)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clca.cli import main
from clca.evaluation import metrics as M
from clca.records import QuestionResult
from clca.runs import JsonlStore


@pytest.mark.slow
def test_eval_cli_real_smollm2(tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLCA_CACHE_DIR", str(tmp_path / "cache"))
    models = Path.home() / ".cache" / "clca" / "models"  # reuse a converted model when there is one
    if models.exists():
        (tmp_path / "cache").mkdir()
        (tmp_path / "cache" / "models").symlink_to(models)
    out = tmp_path / "ev"
    args = [
        "eval",
        "--model",
        "embedded:smollm2-135m",
        "--countries",
        "China,Germany",
        "--questions",
        "Q1,Q7,Q106",
    ]
    args += ["--styles", "plain,cultural", "--out", str(out), "--batch-size", "6"]
    assert main(args) == 0
    recs = JsonlStore(out / "per_question.jsonl", QuestionResult).all()
    assert len(recs) == 12
    for r in recs:
        assert len(r.model_dist) == len(r.codes) and abs(sum(r.model_dist) - 1) < 1e-6
        assert r.model_fingerprint.startswith("embedded:smollm2-135m")
        assert r.metrics["jsd"] == pytest.approx(M.js_distance(r.human_dist, r.model_dist))
    q106 = next(r for r in recs if r.qid == "Q106")
    assert q106.prompts[0].option_logprobs is not None and len(q106.prompts[0].option_logprobs) == 10
    # the cultural system prompt changes the model's distribution
    a = next(r for r in recs if r.id.endswith("|China|plain|Q1")).model_dist
    b = next(r for r in recs if r.id.endswith("|China|cultural|Q1")).model_dist
    assert max(abs(x - y) for x, y in zip(a, b, strict=True)) > 1e-4
    doc = json.loads((out / "metrics.json").read_text())
    assert {(g["country"], g["style"]) for g in doc["groups"]} >= {("China", "plain"), ("ALL", "cultural")}
    assert (out / "report.html").stat().st_size > 10000
    # rerun resumes: same records, nothing new
    assert main(args) == 0
    assert len(JsonlStore(out / "per_question.jsonl", QuestionResult).all()) == 12

"""The paper's evaluation protocol at CPU scale: N personas x the 44 questions of one culture, greedy generation.

The CLCA paper asks each of 1000 respondent personas (its Table 20 system prompt) the 44 WVS questions
(Q1-Q41, Q43-Q45) and parses greedy answers. This benchmark runs that protocol (``eval.protocol: paper``, the
``paper_persona`` style, ``mode: generate``, temperature 0) through ``clca.evaluation.evaluate`` with the
embedded SmolLM2 for one culture, on invented respondents in WorldValuesBench's file layout (real respondent
files may not be redistributed; the demographics are drawn from the codebook's answer codes). It prints the wall
time, answers per second, the share of unparseable answers, and the prompt tokens computed vs reused by the
local engine's prefix store (each persona's system prompt is shared by its 44 questions).

Target (issue "The paper's protocol, exactly"): 100 personas x 44 questions <= 10 minutes on this 2-core machine.

Usage: python bench/bench_persona.py [--personas 100] [--country Japan] [--batch-size 32] [--write]
"""

from __future__ import annotations

import argparse
import platform
import random
import re
import tempfile
import time
from pathlib import Path
from typing import Any

from clca.llm.hardware import cpu_line

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
COUNTRY_CODES = {"Japan": 392, "China": 156, "Germany": 276, "Great Britain": 826}


def write_respondents(folder: Path, country: str, n: int, seed: int = 0) -> None:
    """``n`` invented respondents of ``country`` in WorldValuesBench's two TSV files (valid codebook codes)."""
    from clca.data.wvb import PERSONA_FIELDS
    from clca.data.wvs import load_codebook

    cb = load_codebook()
    rng = random.Random(seed)
    demo_vars = sorted({v for vs in PERSONA_FIELDS.values() for v in vs})
    header = ["D_INTERVIEW", "B_COUNTRY", *demo_vars]
    rows = ["\t".join(header)]
    for i in range(n):
        vals = [f"{COUNTRY_CODES[country]}07{i:04d}", str(COUNTRY_CODES[country])]
        for var in demo_vars:
            entry: dict[str, Any] = dict(cb.get(var) or {})  # type: ignore[call-overload]
            choices = [int(k) for k in (entry.get("choices") or {}) if int(k) >= 0]
            vals.append(str(rng.choice(choices)) if choices else str(rng.randint(18, 80)))
        rows.append("\t".join(vals))
    (folder / "full_demographic_qa.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    qids = [f"Q{i}" for i in range(1, 46) if i != 42]
    vrows = ["\t".join(["D_INTERVIEW", *qids])]
    for i in range(n):
        vrows.append(
            "\t".join([f"{COUNTRY_CODES[country]}07{i:04d}", *(str(rng.randint(1, 2)) for _ in qids)])
        )
    (folder / "full_value_qa.tsv").write_text("\n".join(vrows) + "\n", encoding="utf-8")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--personas", type=int, default=100)
    ap.add_argument("--country", default="Japan", choices=sorted(COUNTRY_CODES))
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--model", default="embedded:smollm2-135m", help="e.g. embedded:smollm2-135m+quant=bf16")
    ap.add_argument("--write", action="store_true", help="put the numbers into bench/RESULTS.md")
    ap.add_argument(
        "--agreement",
        type=int,
        default=0,
        help="also answer the first N personas with the spec's own weights (no +quant) and report the share of "
        "identical parsed answers",
    )
    args = ap.parse_args()

    import torch

    from clca.evaluation import EvalConfig, evaluate
    from clca.llm.registry import load_backend
    from clca.llm.spec import QUANT_SEP

    def run(backend: Any, personas: int) -> Any:
        with tempfile.TemporaryDirectory(prefix="bench_persona_") as tmp:
            resp = Path(tmp) / "wvb"
            resp.mkdir()
            write_respondents(resp, args.country, args.personas)
            cfg = EvalConfig(
                protocol="paper",
                styles=["paper_persona"],
                respondents=resp,
                personas=personas,
                questions="Q1-Q41,Q43-Q45",
                out_dir=Path(tmp) / "out",
                model_tag="bench",
                countries=[args.country],
                batch_size=args.batch_size,
            )
            return evaluate(backend, cfg)

    backend = load_backend(args.model, cache=False, batch_size=args.batch_size)
    engine = getattr(backend, "engine", None)
    t0 = time.perf_counter()
    res = run(backend, args.personas)
    wall = time.perf_counter() - t0
    answers = sum(len(p.parsed) for r in res.records for p in r.prompts)
    invalid = sum(1 for r in res.records for p in r.prompts for c in p.parsed if c is None)
    st = engine.stats if engine is not None else None
    reused = 1 - st.prefilled_tokens / max(1, st.prompt_tokens) if st is not None else 0.0
    lines = [
        f"`python bench/bench_persona.py --personas {args.personas} --country {args.country} "
        f"--batch-size {args.batch_size}` ({args.model}, {platform.machine()}, {cpu_line()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads):",
        "",
        "| personas x questions | answers | wall | answers/s | unparseable | prompt tokens | computed | reused |",
        "|---|---|---|---|---|---|---|---|",
        f"| {args.personas} x {len(res.records)} | {answers} | {wall / 60:.1f} min | {answers / wall:.1f} | "
        f"{invalid / max(1, answers):.1%} | {st.prompt_tokens if st else '-'} | "
        f"{st.prefilled_tokens if st else '-'} | {reused:.1%} |",
    ]
    if args.agreement:
        base_spec = re.sub(re.escape(QUANT_SEP) + r"[^+]*", "", args.model)  # the same model, own weights
        sub = run(backend, args.agreement)
        ref_backend = load_backend(base_spec, cache=False, batch_size=args.batch_size)
        ref = run(ref_backend, args.agreement)
        ref_backend.close()
        mine = [c for r in sub.records for p in r.prompts for c in p.parsed]
        theirs = [c for r in ref.records for p in r.prompts for c in p.parsed]
        same = sum(a == b for a, b in zip(mine, theirs, strict=True))
        lines += [
            "",
            f"Answers identical to {base_spec}'s own weights on the first {args.agreement} personas: "
            f"{same}/{len(mine)} ({same / max(1, len(mine)):.1%}).",
        ]
    text = "\n".join(lines)
    print(text)
    if args.write:
        doc = RESULTS.read_text(encoding="utf-8")
        head = "## Paper evaluation protocol (personas, greedy)"
        section = f"{head}\n\n{text}\n"
        if head in doc:
            start = doc.index(head)
            end = doc.find("\n## ", start + len(head))
            doc = doc[:start] + section + (doc[end + 1 :] if end != -1 else "")
        else:
            doc = doc.rstrip() + "\n\n" + section
        RESULTS.write_text(doc, encoding="utf-8")
    backend.close()


if __name__ == "__main__":
    main()

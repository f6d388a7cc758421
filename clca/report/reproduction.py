"""The reproduction view: a run's numbers next to the CLCA paper's published ones, when they are comparable.

The published numbers are those of the paper (Liu, Korhonen and Gurevych, ACL 2025; arXiv 2504.02953): Table 2
(culture-level KL-D per culture, for the persona baseline, cultural prompting and CLCA), Table 5 (individual-level
accuracy, averaged over the five cultures), Table 15 (JS distance, averaged) and the objective ablations of
Tables 4 and 6 (accuracy / KL-D averaged). A run is comparable with a row when

* its student is the paper's student (the same Hugging Face model, whatever the spec form),
* it evaluates with the paper's protocol (``eval.protocol: paper``: persona prompts of Table 20, greedy
  generation parsed with an unparseable bucket; KL-D is the paper code's ``clca_kl``, JS its ``paper_jsd``),
* its cultures are among the paper's five and its questions are the paper's 44, and
* its mix ablation is the row's (none for Tables 2/5/15; ``dialogue_only`` / ``intent_only`` for Tables 4/6).

Otherwise the view says which condition fails. Differences that remain even when comparable (teacher model, data
scale, judge, number of personas) are listed as caveats.
"""

from __future__ import annotations

from typing import Any

from clca.records import BeforeAfter, Reproduction, ReproductionRow

#: the paper's five cultures, in the column order of its tables
PAPER_CULTURES = ("China", "Germany", "Great Britain", "Mexico", "Japan")
PAPER_QIDS = frozenset([f"Q{i}" for i in range(1, 42)] + ["Q43", "Q44", "Q45"])

#: Hugging Face id -> the paper's model name
PAPER_STUDENTS = {
    "meta-llama/llama-3.1-8b-instruct": "Llama3.1 8B",
    "meta-llama/meta-llama-3.1-8b-instruct": "Llama3.1 8B",
    "meta-llama/llama-3.2-3b-instruct": "Llama3.2 3B",
    "meta-llama/llama-3.2-1b-instruct": "Llama3.2 1B",
    "qwen/qwen2.5-7b-instruct": "Qwen2.5 7B",
    "qwen/qwen2.5-1.5b-instruct": "Qwen2.5 1.5B",
    "qwen/qwen2.5-0.5b-instruct": "Qwen2.5 0.5B",
    "mistralai/mistral-7b-instruct-v0.3": "Mistral-v0.3 7B",
}

# Table 2: KL-D per culture (China, Germany, UK, Mexico, Japan), rows persona / cultural / CLCA
_T2 = {
    "Llama3.1 8B": ([0.5958, 0.6717, 0.6268, 0.5391, 0.5721], [0.5881, 0.6690, 0.6431, 0.5437, 0.5660],
                    [0.5462, 0.4935, 0.5510, 0.4630, 0.5024]),
    "Llama3.2 3B": ([0.6174, 0.6903, 0.6631, 0.5667, 0.6221], [0.5996, 0.6729, 0.6375, 0.5569, 0.6042],
                    [0.5337, 0.6732, 0.6695, 0.5525, 0.6100]),
    "Llama3.2 1B": ([0.5936, 0.6479, 0.6384, 0.5584, 0.6024], [0.5905, 0.6840, 0.6675, 0.5209, 0.6664],
                    [0.5671, 0.6208, 0.6348, 0.5683, 0.5743]),
    "Qwen2.5 7B": ([0.5692, 0.4610, 0.4221, 0.4509, 0.5053], [0.5984, 0.5051, 0.5355, 0.4961, 0.5467],
                   [0.5917, 0.4605, 0.4439, 0.4390, 0.5047]),
    "Qwen2.5 1.5B": ([0.6315, 0.6069, 0.6040, 0.5134, 0.6225], [0.6271, 0.6406, 0.6540, 0.5476, 0.6343],
                     [0.5614, 0.4895, 0.6414, 0.4559, 0.6129]),
    "Qwen2.5 0.5B": ([0.6381, 0.5589, 0.5205, 0.5192, 0.6373], [0.5661, 0.6382, 0.6093, 0.5305, 0.5818],
                     [0.6130, 0.5173, 0.5061, 0.4428, 0.5794]),
    "Mistral-v0.3 7B": ([0.6216, 0.6414, 0.6249, 0.5069, 0.6458], [0.6155, 0.6733, 0.6553, 0.5219, 0.6475],
                        [0.6171, 0.6407, 0.6178, 0.5074, 0.6341]),
}  # fmt: skip
# Table 5: accuracy (base, CLCA), averaged over the five cultures
_T5 = {
    "Llama3.1 8B": (0.3162, 0.3973), "Llama3.2 3B": (0.2983, 0.3148), "Llama3.2 1B": (0.3275, 0.3293),
    "Qwen2.5 7B": (0.4412, 0.4337), "Qwen2.5 1.5B": (0.3211, 0.3645), "Qwen2.5 0.5B": (0.3272, 0.3698),
    "Mistral-v0.3 7B": (0.3273, 0.3372),
}  # fmt: skip
# Table 15: JS distance (base, CLCA), averaged
_T15 = {
    "Llama3.1 8B": (0.5134, 0.4303), "Llama3.2 3B": (0.5626, 0.5402), "Llama3.2 1B": (0.5592, 0.5195),
    "Qwen2.5 7B": (0.4267, 0.4279), "Qwen2.5 1.5B": (0.5138, 0.4817), "Qwen2.5 0.5B": (0.4575, 0.4100),
    "Mistral-v0.3 7B": (0.5604, 0.5522),
}  # fmt: skip
# Tables 4 and 6: (accuracy, KL-D) averaged, per ablation (the Llama3.2 1B ablation cells were lost)
_ABLATION = {
    "dialogue_only": {"Llama3.1 8B": (0.3453, 0.5704), "Qwen2.5 1.5B": (0.3184, 0.5962),
                      "Qwen2.5 0.5B": (0.3598, 0.5499), "Llama3.2 3B": (0.3058, 0.6204)},
    "intent_only": {"Llama3.1 8B": (0.3117, 0.6037), "Qwen2.5 1.5B": (0.3084, 0.6108),
                    "Qwen2.5 0.5B": (0.3292, 0.5726), "Llama3.2 3B": (0.2969, 0.6336)},
}  # fmt: skip

PERSONA, CULTURAL = "paper_persona", "paper_cultural"


def paper_student(spec: str) -> str | None:
    """The paper's name of the student behind a model spec (``hf:Qwen/Qwen2.5-0.5B-Instruct``, an OpenAI
    endpoint serving it, or a local folder named like it), else ``None``."""
    name = spec.split("+", 1)[0]
    kind, _, rest = name.partition(":")
    if kind == "openai":
        rest = rest.split("@", 1)[0]
    elif kind not in ("hf",):
        return None
    key = rest.strip().rstrip("/").lower()
    if key in PAPER_STUDENTS:
        return PAPER_STUDENTS[key]
    base = key.rsplit("/", 1)[-1]
    return next((v for k, v in PAPER_STUDENTS.items() if k.rsplit("/", 1)[-1] == base), None)


def _avg(vals: list[float | None]) -> float | None:
    xs = [v for v in vals if v is not None]
    return sum(xs) / len(xs) if xs and len(xs) == len(vals) else None


def reproduction(config: dict[str, Any] | None, ba: BeforeAfter, qids: set[str]) -> Reproduction:
    """Comparable or not (and why), caveats, the paper's model name and the rows (:class:`Reproduction`).

    ``config``: the run's resolved config (``config.resolved.yaml`` as a dict); ``ba``: the before/after numbers
    (rows with cells ``base|<style>|<metric>`` and ``adapted|<style>|<metric>``); ``qids``: the questions evaluated.
    Each row: table, metric, culture, run/paper values for base and CLCA and their differences.
    """
    why: list[str] = []
    if not config:
        return Reproduction(comparable=False, why=["the run directory has no resolved config"])
    models = config.get("models") or {}
    student = str(models.get("student", ""))
    ev = config.get("eval") or {}
    mix = config.get("mix") or {}
    model = paper_student(student)
    if model is None:
        why.append(
            f"the student {student!r} is not one of the paper's students ({', '.join(sorted(set(PAPER_STUDENTS.values())))})"
        )
    if ev.get("protocol") != "paper":
        why.append(
            f"the evaluation protocol is {ev.get('protocol')!r}, not the paper's (eval.protocol: paper: persona "
            "prompts, generated answers, KL-D as the paper's code computes it)"
        )
    cultures = [r.culture for r in ba.rows]
    extra = [c for c in cultures if c not in PAPER_CULTURES]
    if extra:
        why.append(f"{', '.join(extra)} {'is' if len(extra) == 1 else 'are'} not among the paper's cultures")
    if qids and set(qids) != PAPER_QIDS:
        why.append(f"the run evaluates {len(qids)} questions, not the paper's 44 (Q1-Q41, Q43-Q45)")
    ablation = mix.get("ablation")
    if model is not None and ablation and model not in _ABLATION.get(ablation, {}):
        why.append(f"the paper reports no {ablation} ablation for {model}")
    if why:
        return Reproduction(comparable=False, why=why, model=model)

    assert model is not None
    caveats = []
    if int(ev.get("personas", 0) or 0) != 1000:
        caveats.append(f"{ev.get('personas')} personas per culture (the paper: 1000)")
    teacher = str(models.get("teacher", ""))
    if "llama-3.1-70b" not in teacher.lower():
        caveats.append(f"teacher {teacher} (the paper: Llama-3.1-70B-Instruct)")
    judge = str(models.get("judge") or teacher)
    if "gpt-4" not in judge.lower():
        caveats.append(f"judge {judge} (the paper: GPT-4)")
    per = (config.get("scenarios") or {}).get("per_culture")
    caveats.append(f"{per} scenarios per culture (the paper: about 200)")
    seeds = (config.get("train") or {}).get("seeds")
    if seeds and len(seeds) > 1:
        caveats.append(
            f"the run's CLCA numbers are means over {len(seeds)} training seeds (the paper: one run)"
        )

    by_culture = {r.culture: r for r in ba.rows}
    rows: list[ReproductionRow] = []

    def row(
        table: str,
        metric: str,
        culture: str,
        run_base: float | None,
        paper_base: float | None,
        run_ad: float | None,
        paper_ad: float | None,
    ) -> None:
        rows.append(
            ReproductionRow(
                table=table, metric=metric, culture=culture,
                run_base=run_base, paper_base=paper_base,
                base_diff=None if run_base is None or paper_base is None else run_base - paper_base,
                run_clca=run_ad, paper_clca=paper_ad,
                clca_diff=None if run_ad is None or paper_ad is None else run_ad - paper_ad,
            )
        )  # fmt: skip

    def cell(culture: str, who: str, style: str, metric: str) -> float | None:
        r = by_culture.get(culture)
        v = r.cell(who, style, metric) if r else None
        return None if v is None else float(v)

    all_five = all(c in by_culture for c in PAPER_CULTURES)
    if not ablation:
        persona, cultural, clca = _T2[model]
        for i, c in enumerate(PAPER_CULTURES):
            if c not in by_culture:
                continue
            row("Table 2", "KL-D (persona)", c, cell(c, "base", PERSONA, "clca_kl"), persona[i],
                cell(c, "adapted", PERSONA, "clca_kl"), clca[i])  # fmt: skip
            row("Table 2", "KL-D (cultural prompting)", c, cell(c, "base", CULTURAL, "clca_kl"), cultural[i],
                None, None)  # fmt: skip
        if all_five:
            row("Table 5", "accuracy (persona)", "Average",
                _avg([cell(c, "base", PERSONA, "accuracy") for c in PAPER_CULTURES]), _T5[model][0],
                _avg([cell(c, "adapted", PERSONA, "accuracy") for c in PAPER_CULTURES]), _T5[model][1])  # fmt: skip
            row("Table 15", "JS distance (persona)", "Average",
                _avg([cell(c, "base", PERSONA, "paper_jsd") for c in PAPER_CULTURES]), _T15[model][0],
                _avg([cell(c, "adapted", PERSONA, "paper_jsd") for c in PAPER_CULTURES]), _T15[model][1])  # fmt: skip
        else:
            caveats.append(
                "Tables 5 and 15 give only five-culture averages; the run has a subset, so only Table 2 is compared"
            )
    elif all_five:
        acc, kl = _ABLATION[ablation][model]
        table = "Table 4" if model == "Llama3.1 8B" else "Table 6"
        row(table, f"accuracy ({ablation})", "Average",
            _avg([cell(c, "base", PERSONA, "accuracy") for c in PAPER_CULTURES]), _T5[model][0],
            _avg([cell(c, "adapted", PERSONA, "accuracy") for c in PAPER_CULTURES]), acc)  # fmt: skip
        row(table, f"KL-D ({ablation})", "Average",
            _avg([cell(c, "base", PERSONA, "clca_kl") for c in PAPER_CULTURES]), _avg(list(_T2[model][0])),
            _avg([cell(c, "adapted", PERSONA, "clca_kl") for c in PAPER_CULTURES]), kl)  # fmt: skip
    else:
        return Reproduction(
            comparable=False,
            why=[f"the paper gives {ablation} results only as five-culture averages; the run has a subset"],
            model=model,
        )
    return Reproduction(comparable=True, why=[], caveats=caveats, model=model, rows=rows)

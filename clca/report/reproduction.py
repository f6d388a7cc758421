"""The reproduction view: a run's numbers next to the CLCA paper's published ones, when they are comparable.

The published numbers are those of the paper (Liu, Korhonen and Gurevych, ACL 2025; arXiv 2504.02953): Table 2
(culture-level KL-D per culture, for the persona baseline, cultural prompting and CLCA), Table 5 (individual-level
accuracy, averaged over the five cultures), Table 15 (JS distance, averaged) and the objective ablations of
Tables 4 and 6 (accuracy / KL-D averaged). They depend on the whole protocol, so :func:`protocol_checks` compares
the run's with the paper's, condition by condition (a :class:`~clca.records.report.ProtocolCheck` each, named by
its config key):

* ``student``: one of the paper's seven students (the same Hugging Face model, whatever the spec form);
* ``train.preset``: ``paper`` (Table 14), with no override that changes the recipe (learning rate, epochs,
  steps, effective batch, LoRA, trained modules, length, 4-bit);
* ``judge.rule``: ``paper`` (drop on a very confident "bad"), with the judge's verdicts used by the mix
  (``mix.require_judge``); ``none`` is the paper's no-filter ablation (Table 10), not its main rows;
* ``models.actor``: Llama-3.1-70B-Instruct, which role-plays both people (another model of its size: a caveat);
* ``models.teacher``: a GPT-4 model, which adapts the scenarios (another model of 56B or more: a caveat);
* ``scenarios.source``: ``both`` (SOTOPIA-π tasks adapted to the culture, and new ones from social norms);
* ``eval.protocol``: ``paper`` (persona prompts of Table 20, greedy generation, one answer per persona; KL-D is
  the paper code's ``clca_kl``, JS its ``paper_jsd``) and ``eval.parser``: ``paper`` (the released parser);
* ``cultures``: among the paper's five (all five for the averages of Tables 4, 5, 6 and 15);
* ``questions``: the paper's 44; ``ablation`` and ``mix.ratios``: the row's mix (equal parts; none for
  Tables 2/5/15, ``dialogue_only`` / ``intent_only`` for Tables 4/6).

The view is comparable only when none of these is a ``mismatch``; otherwise it names every one that is. The
other checks (judge and intent models, personas, scenarios per culture, conversations per scenario, the
one-step adaptation prompt, the validation split, a cap on examples, training seeds) can only give caveats.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from clca.records import BeforeAfter, CheckVerdict, ProtocolCheck, Reproduction, ReproductionRow

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


# ---------------------------------------------------------------------------------------------------------------
# The protocol checks

#: the paper's role-play model (clca's ``models.actor``); its intent labeller too (inferred: the released code
#: labels with the role-play model)
PAPER_ACTOR = "Llama-3.1-70B-Instruct"
PAPER_ACTOR_B = 70.0
#: a model within this factor of the paper's actor's size (stated in its name) is "the same size"
SAME_SIZE = (0.8, 1.25)
#: the fields of the training recipe (:class:`~clca.training.presets.TrainConfig`) the numbers depend on; the batch
#: is compared as the effective batch (per device x accumulation x processes)
RECIPE_FIELDS = (
    "model", "lora_r", "lora_alpha", "lora_dropout", "target_modules", "modules_to_save", "tie_trained_embeddings",
    "add_pad_token", "learning_rate", "num_epochs", "max_steps", "max_length", "load_in_4bit", "lr_scheduler",
    "warmup_ratio", "weight_decay",
)  # fmt: skip
NOT_RECORDED = "not recorded"
_SIZE = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)([bm])(?![a-z0-9])")
_LLAMA31_70B = re.compile(r"llama[-_ ]?3\.1[-_ :]?70b")


def model_name(spec: str) -> str:
    """The model behind a spec, without its kind, server addresses or adapter (the spec when it does not parse)."""
    from clca.errors import ModelError
    from clca.llm.spec import parse_spec

    try:
        return parse_spec(spec).name.strip().rstrip("/")
    except ModelError:
        return spec.strip()


def _base(name: str) -> str:
    return name.lower().rsplit("/", 1)[-1]


def params_b(name: str) -> float | None:
    """The parameter count in billions that a model's name states (``70B``, ``0.5b``, ``135M``), else ``None``."""
    m = _SIZE.search(_base(name))
    if m is None:
        return None
    return float(m.group(1)) / (1 if m.group(2) == "b" else 1000)


def is_paper_actor(name: str) -> bool:
    """Llama-3.1-70B-Instruct under any of its names (an HF id, a served name, a local folder, a quantized copy)."""
    return bool(_LLAMA31_70B.search(_base(name))) and "instruct" in _base(name)


def is_gpt4(name: str) -> bool:
    """A GPT-4 model (the paper's scenario adapter and judge; its exact version was not published): ``gpt-4``,
    ``gpt-4o``, ``gpt-4-turbo``, ``gpt-4.1``, ..., but not the small ``mini`` / ``nano`` ones."""
    low = _base(name)
    return low.startswith("gpt-4") and not any(w in low for w in ("mini", "nano"))


def _check(
    name: str, paper: str, run: str, ok: bool, *, note: str = "", close: bool = False, required: bool = True
) -> ProtocolCheck:
    """``close``: a difference that leaves the numbers comparable (a caveat even for a required check)."""
    verdict: CheckVerdict = "match" if ok else "caveat" if close or not required else "mismatch"
    return ProtocolCheck(
        name=name, paper=paper, run=run, verdict=verdict, required=required, note="" if ok else note
    )


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, list):
        return ",".join(map(str, v)) or "none"
    return str(v)


def _train_check(train: dict[str, Any], student: str) -> ProtocolCheck:
    from pydantic import ValidationError

    from clca.errors import ClcaError
    from clca.training.config import TrainSection
    from clca.training.presets import preset

    paper = (
        "paper (Table 14: QLoRA 4-bit, LoRA r 4, alpha 0.1, dropout 0.5 on q_proj/v_proj, embeddings and LM head "
        "trained, batch 8, lr 1e-4 (Mistral 5e-5), 3 epochs (Qwen 1), length 2048)"
    )
    name = train.get("preset", TrainSection.model_fields["preset"].default)
    overrides = train.get("overrides") or {}
    note = "not the paper's training recipe (Table 14)"
    if name != "paper":
        run = str(name) + (f" (overrides: {_fmt(sorted(overrides))})" if overrides else "")
        return _check("train.preset", paper, run, False, note=note)
    try:
        want = preset("paper", model=student, seed=0)
        got = preset("paper", **{"model": student, "seed": 0, **overrides})
    except (ClcaError, ValidationError, TypeError, ValueError):
        return _check("train.preset", paper, f"paper with overrides that do not resolve ({overrides})", False)
    diffs = []
    for field in RECIPE_FIELDS:
        w, g = getattr(want, field), getattr(got, field)
        if isinstance(w, list) and isinstance(g, list):
            w, g = sorted(w), sorted(g)
        if w != g:
            diffs.append(f"{field} {_fmt(g)} (paper {_fmt(w)})")
    procs = int(train.get("num_processes") or 1) if train.get("launcher") == "accelerate" else 1
    batch_w = want.per_device_batch_size * want.grad_accum
    batch_g = got.per_device_batch_size * got.grad_accum * procs
    if batch_w != batch_g:
        diffs.append(f"effective batch {batch_g} (paper {batch_w})")
    run = "paper" + (f", overridden: {'; '.join(diffs)}" if diffs else "")
    return _check("train.preset", paper, run, not diffs, note=note)


def _rule_name(rule: object) -> str:
    """``paper`` / ``none`` / ``custom`` for a filter rule as the resolved config writes it (a mapping) or named."""
    from pydantic import ValidationError

    from clca.judge.config import NAMED_RULES, FilterRule

    if isinstance(rule, FilterRule):
        return rule.name or "custom"
    if isinstance(rule, str):
        return rule.strip() if rule.strip() in NAMED_RULES else "custom"
    try:
        return FilterRule.model_validate(rule).name or "custom"
    except ValidationError:
        return "custom"


def protocol_checks(
    config: dict[str, Any], ba: BeforeAfter, qids: Iterable[str], parsers: Iterable[str] | None = None
) -> list[ProtocolCheck]:
    """The run's protocol against the paper's, condition by condition (see the module doc).

    ``config``: the resolved run config as a dict (a key it lacks has clca's default, as when a config loads,
    except ``eval.parser``: a config without it predates the setting, whose runs read the first integer of a
    reply); ``ba``: the before/after numbers (their cultures and styles); ``qids``: the questions evaluated;
    ``parsers``: the parsers the evaluation records name for their generated answers (``""``: older records),
    which win over the config's ``eval.parser``.
    """
    from clca.evaluation.config import EvalSettings
    from clca.judge.config import JudgeConfig
    from clca.options import DEFAULT_ACTOR, DEFAULT_STUDENT, DEFAULT_TEACHER
    from clca.roleplay.config import SimulateConfig
    from clca.scenarios.config import ScenariosConfig
    from clca.training.config import MixConfig

    def section(key: str) -> dict[str, Any]:
        v = config.get(key)
        return v if isinstance(v, dict) else {}

    models, ev, mix, train = section("models"), section("eval"), section("mix"), section("train")
    scen, sim, judge = section("scenarios"), section("simulate"), section("judge")
    mix_default, scen_default = MixConfig(), ScenariosConfig()
    student = str(models.get("student") or DEFAULT_STUDENT)
    teacher = str(models.get("teacher") or DEFAULT_TEACHER)
    model = paper_student(student)
    ablation = mix.get("ablation", mix_default.ablation)
    checks: list[ProtocolCheck] = []
    add = checks.append

    # the student and its training
    students = ", ".join(dict.fromkeys(PAPER_STUDENTS.values()))
    add(
        _check(
            "student",
            f"one of its seven students ({students})",
            f"{model} ({model_name(student)})" if model else model_name(student),
            model is not None,
            note="not one of the paper's students: it has no published numbers",
        )
    )
    add(_train_check(train, student))

    # the data: the judge's filter, the role-play model, the scenario adapter, the scenarios
    rule = _rule_name(judge.get("rule", JudgeConfig().rule))
    uses_judge = mix.get("require_judge", mix_default.require_judge) is not False
    run = rule + ("" if uses_judge else ", but mix.require_judge: false (the mix uses every episode)")
    filtered = rule == "paper" and uses_judge
    add(
        _check(
            "judge.rule",
            "paper (drop a conversation judged bad with high confidence on quality or on the meta label)",
            run,
            filtered,
            note="without the filter this is the paper's no-filter ablation (Table 10, Llama3.1 8B averages "
            "only: accuracy 0.3608, KL-D 0.5639), not its main rows"
            if rule == "none" or not uses_judge
            else "the paper's filter decides which conversations the student learns from",
        )
    )
    actor = model_name(str(models.get("actor") or DEFAULT_ACTOR))
    size = params_b(actor)
    same_size = size is not None and SAME_SIZE[0] * PAPER_ACTOR_B <= size <= SAME_SIZE[1] * PAPER_ACTOR_B
    add(
        _check(
            "models.actor",
            f"{PAPER_ACTOR} (role-plays both people)",
            actor,
            is_paper_actor(actor),
            close=same_size,
            note="another model of the paper's actor's size: the conversations the student learns from may "
            "differ"
            if same_size
            else "the conversations the student learns from come from a model of "
            "another or unknown size (§6.5: a Qwen2.5-32B actor gave KL-D 0.5617 where Llama-3.1-70B gave "
            "0.5112)",
        )
    )
    name = model_name(teacher)
    size = params_b(name)
    large = size is not None and size >= SAME_SIZE[0] * PAPER_ACTOR_B
    add(
        _check(
            "models.teacher",
            "a GPT-4 model (adapts the scenarios to the culture; version not published)",
            name,
            is_gpt4(name),
            close=large,
            note="not a GPT-4 model but a large one: the adapted scenarios may differ"
            if large
            else "the scenarios are adapted by a model much smaller than GPT-4, or of unknown size",
        )
    )
    source = str(scen.get("source", scen_default.source))
    add(
        _check(
            "scenarios.source",
            "both (SOTOPIA-π tasks adapted to the culture, and new scenarios from social norms)",
            source,
            source == "both",
            note={
                "adapt": "only adapted SOTOPIA-π tasks, no scenarios from social norms",
                "norms": "only scenarios from social norms, no adapted SOTOPIA-π tasks",
                "seeds": "the SOTOPIA-π tasks unadapted: the culture enters only through the role-play "
                "prompt",
            }.get(source, ""),
        )
    )

    # the evaluation
    protocol = str(ev.get("protocol", EvalSettings.model_fields["protocol"].default))
    mode = str(ev.get("mode") or ("generate" if protocol == "paper" else "logprob"))
    issues = []
    if protocol == "paper":
        if mode != "generate":
            issues.append(f"mode {mode}")
        if float(ev.get("temperature") or 0.0) != 0.0:
            issues.append(f"temperature {ev.get('temperature')} (not greedy)")
        if int(ev.get("samples") or 1) != 1:
            issues.append(f"{ev.get('samples')} answers per prompt")
    if PERSONA not in ba.styles:
        issues.append("no paper_persona answers in the evaluation records")
    add(
        _check(
            "eval.protocol",
            "paper (the persona prompts of Table 20, greedy generation, one answer per persona)",
            protocol + (f": {', '.join(issues)}" if issues else ""),
            protocol == "paper" and not issues,
            note="the paper's numbers are greedy answers to its persona prompts; another protocol measures "
            "something else",
        )
    )
    recorded = sorted(set(parsers or ()))
    if recorded:
        run = ", ".join(
            p or f"{NOT_RECORDED} (older records: the first integer of the reply)" for p in recorded
        )
        ok = recorded == ["paper"]
    elif mode != "generate":
        run, ok = "none (answers scored by their option log-probabilities)", False
    elif ev.get("parser") is None:
        run, ok = f"{NOT_RECORDED} (the run predates eval.parser: the first integer of the reply)", False
    else:
        run = str(ev.get("parser"))
        ok = run == "paper"
    add(
        _check(
            "eval.parser",
            "paper (the released code's strict parser, unparseable answers in a safeguard bucket)",
            run,
            ok,
            note="no answers are parsed under log-prob scoring"
            if mode != "generate" and not recorded
            else "another parser reads some replies differently, which moves KL-D and accuracy",
        )
    )

    cultures = [r.culture for r in ba.rows]
    extra = [c for c in cultures if c not in PAPER_CULTURES]
    all_five = all(c in cultures for c in PAPER_CULTURES)
    paper = f"{', '.join(PAPER_CULTURES)} (all five for the averages of Tables 4, 5, 6 and 15)"
    run = ", ".join(cultures) or "none evaluated"
    if not cultures or extra:
        add(
            _check(
                "cultures",
                paper,
                run,
                False,
                note=f"{', '.join(extra)} {'is' if len(extra) == 1 else 'are'} not among the paper's cultures"
                if extra
                else "no culture was evaluated",
            )
        )
    elif all_five:
        add(_check("cultures", paper, run, True))
    elif ablation:
        add(
            _check(
                "cultures",
                paper,
                run,
                False,
                note=f"the paper gives {ablation} results only as five-culture averages",
            )
        )
    else:
        add(
            _check(
                "cultures",
                paper,
                run,
                False,
                close=True,
                note="Tables 5 and 15 give only five-culture averages; the run has a subset, so only Table 2 "
                "is compared",
            )
        )
    asked = set(qids)
    missing = sorted(PAPER_QIDS - asked, key=lambda q: (len(q), q))
    more = sorted(asked - PAPER_QIDS, key=lambda q: (len(q), q))
    parts = [f"{len(missing)} of the paper's not asked"] if missing else []
    parts += (
        [f"{', '.join(more[:5])}{', ...' if len(more) > 5 else ''} not among the paper's"] if more else []
    )
    add(
        _check(
            "questions",
            "the 44 of WVS-7 'Social Values, Norms, Stereotypes' (Q1-Q41, Q43-Q45)",
            "the paper's 44" if asked == PAPER_QIDS else f"{len(asked)} questions ({'; '.join(parts)})",
            asked == PAPER_QIDS,
            note="the paper averages over its 44 questions",
        )
    )

    # the mix
    known = model is None or not ablation or model in _ABLATION.get(str(ablation), {})
    add(
        _check(
            "ablation",
            "none (Tables 2, 5 and 15); dialogue_only / intent_only for Llama3.1 8B, Llama3.2 3B, "
            "Qwen2.5 1.5B and 0.5B (Tables 4 and 6)",
            str(ablation or "none"),
            known,
            note=f"the paper reports no {ablation} ablation for {model}",
        )
    )
    ratios = {
        "person 1": float(mix.get("ratio_dialogue_p1", mix_default.ratio_dialogue_p1)),
        "person 2": float(mix.get("ratio_dialogue_p2", mix_default.ratio_dialogue_p2)),
        "intents": float(mix.get("ratio_intent", mix_default.ratio_intent)),
    }
    want = {"dialogue_only": {"person 1", "person 2"}, "intent_only": {"intents"}}.get(
        str(ablation), set(ratios)
    )
    for part in set(ratios) - want:
        ratios[part] = 0.0
    used = {k for k, v in ratios.items() if v > 0}
    add(
        _check(
            "mix.ratios",
            "equal parts: " + ", ".join(k for k in ratios if k in want),
            " : ".join(f"{v:g}" for v in ratios.values()) + f" ({' : '.join(ratios)})",
            used == want and len({ratios[k] for k in used}) == 1,
            note="the training mix weighs its parts differently from the paper's",
        )
    )

    # caveats only: differences the paper's numbers depend on less
    judge_model = model_name(str(models.get("judge") or teacher))
    add(
        _check(
            "models.judge",
            "a GPT-4 model at temperature 0",
            judge_model + ("" if models.get("judge") else " (the teacher)"),
            is_gpt4(judge_model),
            required=False,
            note="another judge keeps other conversations",
        )
    )
    labeller = model_name(str(models.get("intents") or teacher))
    add(
        _check(
            "models.intents",
            f"{PAPER_ACTOR} (inferred: the released code labels with the role-play model)",
            labeller + ("" if models.get("intents") else " (the teacher)"),
            is_paper_actor(labeller),
            required=False,
            note="another model writes the intent labels",
        )
    )
    personas = ev.get("personas", EvalSettings.model_fields["personas"].default)
    add(
        _check(
            "eval.personas",
            "1000 respondents per culture",
            f"{personas} per culture",
            personas == 1000,
            required=False,
            note="fewer personas give noisier numbers",
        )
    )
    per = scen.get("per_culture", scen_default.per_culture)
    add(
        _check(
            "scenarios.per_culture",
            "193-225 per culture (Table 9)",
            f"{per} per culture",
            isinstance(per, int) and 193 <= per <= 225,
            required=False,
            note="a different data scale",
        )
    )
    if source in ("adapt", "both"):
        first = scen.get("names_first", scen_default.names_first)
        add(
            _check(
                "scenarios.names_first",
                "false (one adaptation prompt, Table 19)",
                str(first).lower(),
                first is False,
                required=False,
                note="the teacher names the people before it adapts the scenario",
            )
        )
    samples = sim.get("samples", SimulateConfig().samples)
    add(
        _check(
            "simulate.samples",
            "2 conversations per scenario",
            f"{samples} per scenario",
            samples == 2,
            required=False,
            note="a different data scale",
        )
    )
    val = float(mix.get("val_fraction", mix_default.val_fraction) or 0.0)
    add(
        _check(
            "mix.val_fraction",
            "0 (no held-out split)",
            f"{val:g}",
            val == 0.0,
            required=False,
            note="the run holds out that share of the kept conversations and trains on the rest",
        )
    )
    cap = mix.get("max_examples", mix_default.max_examples)
    add(
        _check(
            "mix.max_examples",
            "no cap",
            "no cap" if cap is None else str(cap),
            cap is None,
            required=False,
            note="the run trains on at most that many examples",
        )
    )
    seeds = train.get("seeds") or []
    add(
        _check(
            "train.seeds",
            "one training run",
            f"{len(seeds)} seeds" if len(seeds) > 1 else "one",
            len(seeds) <= 1,
            required=False,
            note="the run's CLCA numbers are means over its training seeds",
        )
    )
    return checks


def reproduction(
    config: dict[str, Any] | None, ba: BeforeAfter, qids: set[str], parsers: Iterable[str] | None = None
) -> Reproduction:
    """Comparable or not (every mismatching protocol check, by name), caveats, the paper's model name, the
    protocol checks and the rows (:class:`Reproduction`).

    ``config``: the run's resolved config (``config.resolved.yaml`` as a dict); ``ba``: the before/after numbers
    (rows with cells ``base|<style>|<metric>`` and ``adapted|<style>|<metric>``); ``qids``: the questions evaluated;
    ``parsers``: the parsers named by the records of generated answers (see :func:`protocol_checks`). Each row:
    table, metric, culture, run/paper values for base and CLCA and their differences.
    """
    if not config:
        why = "the run directory has no resolved config"
        check = ProtocolCheck(
            name="config", paper="a resolved run config", run="none", verdict="mismatch", note=why
        )
        return Reproduction(comparable=False, why=[why], mismatches=["config"], checks=[check])
    checks = protocol_checks(config, ba, qids, parsers)
    model = paper_student(str((config.get("models") or {}).get("student") or ""))
    bad = [c for c in checks if c.verdict == "mismatch"]
    if bad:
        return Reproduction(
            comparable=False, why=[c.sentence for c in bad], mismatches=[c.name for c in bad], model=model,
            checks=checks,
        )  # fmt: skip
    assert model is not None
    ablation = (config.get("mix") or {}).get("ablation")
    caveats = [c.sentence for c in checks if c.verdict == "caveat"]
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
    elif all_five:
        acc, kl = _ABLATION[ablation][model]
        table = "Table 4" if model == "Llama3.1 8B" else "Table 6"
        row(table, f"accuracy ({ablation})", "Average",
            _avg([cell(c, "base", PERSONA, "accuracy") for c in PAPER_CULTURES]), _T5[model][0],
            _avg([cell(c, "adapted", PERSONA, "accuracy") for c in PAPER_CULTURES]), acc)  # fmt: skip
        row(table, f"KL-D ({ablation})", "Average",
            _avg([cell(c, "base", PERSONA, "clca_kl") for c in PAPER_CULTURES]), _avg(list(_T2[model][0])),
            _avg([cell(c, "adapted", PERSONA, "clca_kl") for c in PAPER_CULTURES]), kl)  # fmt: skip
    # (an ablation run with a subset of the cultures fails the ``cultures`` check)
    return Reproduction(comparable=True, why=[], caveats=caveats, model=model, rows=rows, checks=checks)

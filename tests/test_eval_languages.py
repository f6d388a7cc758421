"""Multilingual evaluation (issue #24 item 5, the CLCA paper's §6.4): the paper's released templates, `clca
translate` (machine files with source and model, resume, re-asks, reviewed files win), evaluating a country in
its language (``<style>@<lang>`` records, English records unchanged), the one-line errors, the pipeline's
translate stage and plan, the report's language rows, and one smoke run on the embedded models."""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from clca.cli import main
from clca.errors import ClcaError, DataError
from clca.evaluation import EvalConfig, evaluate, load_survey
from clca.evaluation.config import EvalSettings, TranslateSettings
from clca.evaluation.styles import builtin_styles, resolve_styles
from clca.evaluation.translate import RELEASED_DIR, localise, released_file, translate
from clca.llm.base import Chat
from clca.llm.testing import ScriptedBackend
from clca.records import QuestionResult
from clca.rundir import TranslationDir
from clca.runs import JsonlStore

FIX = Path(__file__).parent / "fixtures"
ROOT = Path(__file__).resolve().parents[1]

# The released wvs_evaluation.py (UKPLab/arxiv2025-clca af5b765, lines 16-42 and 86-96), verbatim.
RELEASED_PERSONA = """
    You are currently living in {country} and here is you basic demographic information:
    Settlement: {settlement}, {region}
    Gender: {gender}
    Age: {age}
    Born in {country}: {born}
    Marital status: {marital}
    Number of people in household: {household}
    Education: {education}
    Profession: {profession}
    Employment: {employeed}
    Class: {classes}
"""
RELEASED_PERSONA_ZH = """
    您目前居住在中国，以下是您的基本人口统计信息：
    居住地：{settlement}, {region}
    性别：{gender}
    年龄：{age}
    出生地是否在中国：{born}
    婚姻状况：{marital}
    家庭成员人数：{household}
    教育程度：{education}
    职业：{profession}
    就业状态：{employeed}
    社会阶层：{classes}
"""
RELEASED_DATA = (  # its last line is "    ANSWER: " (a trailing space)
    "\n    Please answer the following question, output the integer option when instructed, don't explain:"
    "\n    QUESTION: {question}\n    ANSWER: \n"
)
RELEASED_DATA_ZH = "\n    请回答以下问题，输出整数选项，不要解释：\n    QUESTION: {question}\n    ANSWER: \n"


def _lines(text: str) -> list[str]:
    return [ln.strip() for ln in text.split("\n") if ln.strip()]


def _normalise(text: str, joiner: str) -> str:
    """clca's normalisation of the released templates (docs/evaluation.md, "Multilingual evaluation")."""
    return (
        joiner.join(_lines(text))
        .replace("{marital}", "{marital_status}")
        .replace("{employeed}", "{employed}")
    )


def test_released_templates_are_normalised_like_the_english_ones() -> None:
    pp = builtin_styles()["paper_persona"]
    # the English style is the released English prompt under the same rules (plus the "you basic" typo fixed)
    assert _normalise(RELEASED_PERSONA, "\n").replace("you basic", "your basic") == pp.system
    assert _normalise(RELEASED_DATA, " ") == pp.user
    zh = released_file("zh")
    assert zh is not None
    entry = zh.styles["paper_persona"]
    assert entry.system == _normalise(RELEASED_PERSONA_ZH, "\n")
    assert entry.user == _normalise(RELEASED_DATA_ZH, " ")
    assert entry.source_system == pp.system and entry.source_user == pp.user
    for lang, country in (("zh", "China"), ("ja", "Japan"), ("de", "Germany"), ("es", "Mexico")):
        tf = released_file(lang)
        assert tf is not None and list(tf.styles) == ["paper_persona"] and not tf.questions
        e = tf.styles["paper_persona"]
        assert e.status == "released" and e.country == country
        assert "af5b765" in e.source and "Apache-2.0" in e.source
        assert "{question}" in e.user and e.user.endswith("ANSWER:") and "QUESTION: {question}" in e.user
        system = e.system or ""
        assert len(system.split("\n")) == 11 and "{marital_status}" in system and "{employed}" in system
    es = released_file("es")
    assert es is not None and "Actualmente vives en Mexicanos" in (es.styles["paper_persona"].system or "")
    assert released_file("ko") is None
    assert sorted(p.name for p in RELEASED_DIR.glob("*.yaml")) == ["de.yaml", "es.yaml", "ja.yaml", "zh.yaml"]


def _payload(chat: Chat) -> dict[str, Any]:
    return json.loads(chat[-1]["content"].split("\n\n", 1)[1])


def translator(chat: Chat) -> str:
    """A scripted teacher: marks every text as translated, keeps the placeholders."""
    src = _payload(chat)
    out = {k: (f"【译】{v}" if isinstance(v, str) else [f"选项{o}" for o in v]) for k, v in src.items()}
    return json.dumps(out, ensure_ascii=False)


def _settings(**kw: object) -> TranslateSettings:
    base: dict[str, object] = {
        "languages": ["zh"],
        "questions": "Q1,Q7",
        "styles": ["plain", "paper_persona"],
    }
    return TranslateSettings.model_validate({**base, **kw})


def _translate(be: ScriptedBackend, out: Path, **kw: object):  # type: ignore[no-untyped-def]
    ts = _settings(**kw)
    items = load_survey(ts.survey).select(ts.questions)
    return translate(be, out, ts, items, resolve_styles(ts.styles), model="scripted:teacher", batch_size=4)


def test_translate_writes_a_reviewable_machine_file_and_resumes(tmp_path: Path, data_dir: Path) -> None:
    be = ScriptedBackend(translator, spec="scripted:teacher")
    out = tmp_path / "tr"
    s = _translate(be, out)
    # Q1, Q7 and the plain style; paper_persona has the paper's released Chinese templates
    assert (s.translated, s.released, s.kept, s.failed) == (3, 1, 0, 0) and s.llm.calls == 3
    text = (out / "zh.machine.yaml").read_text(encoding="utf-8")
    assert text.startswith("# Machine translations") and "zh.reviewed.yaml" in text
    tf = TranslationDir(out).machine("zh")
    assert tf is not None and list(tf.questions) == ["Q1", "Q7"] and list(tf.styles) == ["plain"]
    q1 = tf.questions["Q1"]
    item = load_survey("wvs7").items["Q1"]
    assert q1.source_text == item.text and q1.source_options == item.options
    assert q1.text == f"【译】{item.text}" and q1.options == [f"选项{o}" for o in item.options]
    assert (q1.model, q1.status, q1.prompt) == ("scripted:teacher", "machine", "translate-v1")
    plain = tf.styles["plain"]
    assert plain.user.startswith("【译】{question}") and plain.source_user == builtin_styles()["plain"].user
    assert plain.answer_instruction.startswith("【译】Answer with")
    # the request: the source as JSON, the language named, structured output asked for
    chat = be.calls[0].chats[0]
    assert "Simplified Chinese" in chat[-1]["content"] and be.calls[0].params.json_schema is not None
    # a rerun asks nothing; a new question is the only request; --include-released asks for paper_persona too
    be2 = ScriptedBackend(translator, spec="scripted:teacher")
    assert _translate(be2, out).kept == 3 and be2.calls == []
    s3 = _translate(be2, out, questions="Q1,Q7,Q45")
    assert s3.translated == 1 and len(be2.chats) == 1
    s4 = _translate(be2, out, questions="Q1,Q7,Q45", include_released=True)
    assert s4.translated == 1 and s4.released == 0
    tf = TranslationDir(out).machine("zh")
    assert tf is not None and list(tf.questions) == ["Q1", "Q7", "Q45"]
    assert "{country}" in (tf.styles["paper_persona"].system or "")


def test_a_reviewed_style_for_one_country_leaves_the_others_to_translate(
    tmp_path: Path, data_dir: Path
) -> None:
    """A reviewed entry that names one country stands for that country only (``LanguageFiles.style``), so
    ``clca translate`` still asks for the machine translation the other countries of that language need; an entry
    without a country covers them all and nothing is asked."""
    out = tmp_path / "tr"
    out.mkdir()
    entry = {"user": "问题：{question}", "answer_instruction": "请只回答数字。"}
    for country, asked in (("China", True), (None, False)):
        reviewed = {"styles": {"plain": {**entry, **({"country": country} if country else {})}}}
        (out / "zh.reviewed.yaml").write_text(yaml.safe_dump(reviewed, allow_unicode=True), encoding="utf-8")
        (out / "zh.machine.yaml").unlink(missing_ok=True)
        be = ScriptedBackend(translator, spec="scripted:teacher")
        s = _translate(be, out, questions="Q1", styles="plain")
        assert (s.reviewed, s.translated) == ((0, 2) if asked else (1, 1)), country
        assert asked == any("{question}" in json.dumps(_payload(c), ensure_ascii=False) for c in be.chats)


def test_unusable_replies_are_reasked_and_failures_reported(tmp_path: Path, data_dir: Path) -> None:
    seen: dict[str, int] = {}

    def flaky(chat: Chat) -> str:
        key = chat[1]["content"]  # the first request's prompt (a re-ask adds the reply and a repair turn)
        seen[key] = seen.get(key, 0) + 1
        src = _payload(chat[:2])
        if seen[key] == 1:  # first answers: one option label short, and the placeholders translated away
            if "options" in src:
                return json.dumps({"text": "问题", "options": ["是"]}, ensure_ascii=False)
            return json.dumps({k: "请回答问题" for k in src}, ensure_ascii=False)
        return translator(chat[:2])

    be = ScriptedBackend(flaky, spec="scripted:teacher")
    s = _translate(be, tmp_path / "tr", questions="Q7", styles="plain")
    assert s.translated == 2 and s.llm.retries == 2 and s.failed == 0
    repairs = [c[3]["content"] for c in be.chats if len(c) == 4]
    assert len(repairs) == 2 and all(r.startswith("That reply cannot be used: ") for r in repairs)
    assert any('"options" has 1 labels, but the question has 2 options' in r for r in repairs)
    assert any(
        "must keep exactly the placeholders" in r and "lost {answer_instruction}" in r for r in repairs
    )
    # a teacher that never keeps the placeholders: the questions are written, the style is a one-line error
    never = ScriptedBackend(
        lambda chat: (
            json.dumps({k: "请回答" for k in _payload(chat[:2])}, ensure_ascii=False)
            if "options" not in _payload(chat[:2])
            else translator(chat[:2])
        ),
        spec="scripted:teacher",
    )
    with pytest.raises(ClcaError, match=r"1 translation\(s\) stayed unusable .*zh style plain") as err:
        _translate(never, tmp_path / "tr2", max_retries=1)
    assert "\n" not in str(err.value) and "reviewed.yaml" in str(err.value)
    tf = TranslationDir(tmp_path / "tr2").machine("zh")
    assert tf is not None and set(tf.questions) == {"Q1", "Q7"} and not tf.styles


def _eval_cfg(tmp_path: Path, out: str, **kw: object) -> EvalConfig:
    base: dict[str, object] = {
        "out_dir": tmp_path / out,
        "model_tag": "m",
        "countries": ["China", "Germany"],
        "questions": "Q1,Q7",
        "protocol": "paper",
        "respondents": FIX / "wvb",
        "personas": 2,
        "batch_size": 3,
    }
    return EvalConfig.model_validate({**base, **kw})


def _student(
    texts: tuple[str, ...] = ("1", "非常重要", "ANSWER: 2", "选项Rather important"),
) -> ScriptedBackend:
    counter = itertools.count()
    return ScriptedBackend(
        lambda chat: texts[next(counter) % len(texts)], spec="scripted:student", fingerprint="student-v1"
    )


def test_a_country_is_evaluated_in_its_language_and_english_records_stay_as_they_were(
    tmp_path: Path, data_dir: Path
) -> None:
    tr = tmp_path / "tr"
    _translate(ScriptedBackend(translator), tr, styles="paper_persona,paper_cultural")
    english = evaluate(_student(("1",)), _eval_cfg(tmp_path, "en"))
    both = evaluate(_student(("1",)), _eval_cfg(tmp_path, "both", languages="China=zh", translations=tr))
    en_lines = (tmp_path / "en" / "per_question.jsonl").read_text(encoding="utf-8").splitlines()
    both_lines = (tmp_path / "both" / "per_question.jsonl").read_text(encoding="utf-8").splitlines()
    assert both_lines[: len(en_lines)] == en_lines  # the English records, byte for byte, come first
    assert all('"language"' not in ln and '"translation"' not in ln for ln in en_lines)
    zh = [r for r in both.records if r.language]
    assert {r.style for r in zh} == {"paper_persona@zh", "paper_cultural@zh"} and {r.country for r in zh} == {
        "China"
    }
    assert len(both.records) == len(english.records) + 4
    rec = next(r for r in zh if r.id == "m|China|paper_persona@zh|Q1")
    system, user = rec.prompts[0].messages[0]["content"], rec.prompts[0].messages[1]["content"]
    assert system.startswith("您目前居住在中国，以下是您的基本人口统计信息：\n居住地：")
    assert user.startswith("请回答以下问题，输出整数选项，不要解释： QUESTION: 【译】On a scale of 1 to 4")
    assert user.endswith("ANSWER:")
    assert rec.question.startswith("【译】") and rec.options[0] == "选项Very important"
    assert rec.translation["style"].startswith("released: UKPLab/arxiv2025-clca, commit af5b765")
    assert (
        rec.translation["question"].startswith("machine: ")
        and "scripted:teacher" in rec.translation["question"]
    )
    # the same respondents as the English records, the same human side
    en_rec = next(r for r in both.records if r.id == "m|China|paper_persona|Q1")
    assert [p.persona_id for p in rec.prompts] == [p.persona_id for p in en_rec.prompts]
    assert rec.human_dist == en_rec.human_dist
    cult = next(r for r in zh if r.style == "paper_cultural@zh")
    assert (
        cult.prompts[0]
        .messages[0]["content"]
        .startswith("【译】You are an average human being born in China")
    )
    metrics = json.loads((tmp_path / "both" / "metrics.json").read_text())
    assert {g["style"] for g in metrics["groups"] if g["country"] == "China"} >= {"paper_persona@zh"}
    # answers read with the translated options: clca's parser reads the option words of the translation, the
    # paper's its multilingual ANS2NUM ("非常重要" = 1), as the released code does

    def answers(chat: Chat) -> str:
        if "居住地" not in chat[0]["content"]:
            return "1"
        return "非常重要" if "1 to 4" in chat[1]["content"] else "选项Not mentioned"

    mixed = evaluate(
        ScriptedBackend(answers, spec="scripted:student", fingerprint="student-v2"),
        _eval_cfg(tmp_path, "mixed", countries=["China"], languages={"China": "zh"}, translations=tr),
    )
    q1 = next(r for r in mixed.records if r.id == "m|China|paper_persona@zh|Q1")
    q7 = next(r for r in mixed.records if r.id == "m|China|paper_persona@zh|Q7")
    assert q1.parser == "paper" and q1.options[1] == "选项Rather important"
    assert [(p.parsed, p.parsed_other) for p in q1.prompts] == [([1], [None])] * 2
    assert [(p.parsed, p.parsed_other) for p in q7.prompts] == [([None], [2])] * 2


def test_reviewed_entries_win_and_bad_files_are_one_line_errors(tmp_path: Path, data_dir: Path) -> None:
    tr = tmp_path / "tr"
    _translate(ScriptedBackend(translator), tr, styles="paper_persona")
    item = load_survey("wvs7").items["Q1"]
    reviewed: dict[str, Any] = {
        "questions": {
            "Q1": {
                "text": "家庭在您生活中有多重要？",
                "options": ["非常重要", "比较重要", "不太重要", "完全不重要"],
            }
        },
        "styles": {
            "paper_persona": {"system": "你住在{country}。{gender}", "user": "问题：{question} ANSWER:"}
        },
    }
    (tr / "zh.reviewed.yaml").write_text(yaml.safe_dump(reviewed, allow_unicode=True), encoding="utf-8")
    res = evaluate(
        _student(("1",)),
        _eval_cfg(
            tmp_path,
            "ev",
            countries=["China"],
            styles=["paper_persona"],
            languages="China=zh",
            translations=tr,
        ),
    )
    q1 = next(r for r in res.records if r.id == "m|China|paper_persona@zh|Q1")
    q7 = next(r for r in res.records if r.id == "m|China|paper_persona@zh|Q7")
    assert q1.question == "家庭在您生活中有多重要？" and q1.translation["question"].startswith("reviewed: ")
    assert q7.question.startswith("【译】") and q7.translation["question"].startswith("machine: ")
    # the reviewed style wins over the paper's released one
    assert q1.prompts[0].messages[0]["content"].startswith("你住在China。")
    assert q1.translation["style"].startswith("reviewed: ")
    # a reviewed entry with one label short: one line naming the file, the entry and the fix
    reviewed["questions"]["Q1"]["options"] = ["非常重要", "比较重要"]
    (tr / "zh.reviewed.yaml").write_text(yaml.safe_dump(reviewed, allow_unicode=True), encoding="utf-8")
    with pytest.raises(DataError, match=r"zh\.reviewed\.yaml: entry questions\.Q1\.options: 2 labels") as err:
        evaluate(
            _student(),
            _eval_cfg(
                tmp_path,
                "ev2",
                countries=["China"],
                styles=["paper_persona"],
                languages="China=zh",
                translations=tr,
            ),
        )
    assert "\n" not in str(err.value)
    # a reviewed template that drops {question}
    reviewed["questions"]["Q1"]["options"] = ["a", "b", "c", "d"]
    reviewed["styles"]["paper_persona"]["user"] = "请回答。"
    (tr / "zh.reviewed.yaml").write_text(yaml.safe_dump(reviewed, allow_unicode=True), encoding="utf-8")
    with pytest.raises(DataError, match=r"entry styles\.paper_persona: it lacks \{question\}"):
        evaluate(
            _student(),
            _eval_cfg(
                tmp_path,
                "ev3",
                countries=["China"],
                styles=["paper_persona"],
                languages="China=zh",
                translations=tr,
            ),
        )
    # not YAML; an entry of the wrong shape; a file whose language is not its name's
    (tr / "zh.reviewed.yaml").write_text("questions: [unclosed", encoding="utf-8")
    with pytest.raises(DataError, match=r"zh\.reviewed\.yaml, line \d+: not valid YAML"):
        TranslationDir(tr).reviewed("zh")
    (tr / "zh.reviewed.yaml").write_text("questions:\n  Q1: {text: 问题}\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"zh\.reviewed\.yaml: entry questions\.Q1\.options: Field required"):
        TranslationDir(tr).reviewed("zh")
    (tr / "zh.reviewed.yaml").write_text("language: de\n", encoding="utf-8")
    with pytest.raises(DataError, match="says language 'de'"):
        TranslationDir(tr).reviewed("zh")
    # a machine entry made from other English wording is stale: not used, named in the error
    (tr / "zh.reviewed.yaml").unlink()
    tf = TranslationDir(tr).machine("zh")
    assert tf is not None
    tf.questions["Q1"].source_text = "How important is family?"
    TranslationDir(tr).write_machine(tf)
    with pytest.raises(DataError, match=r"Q1 translated from other English wording \(stale\)"):
        localise(tr, {"China": "zh"}, resolve_styles(["paper_persona"]), [item], questions="Q1")


def test_a_missing_translation_stops_before_any_work(tmp_path: Path, data_dir: Path) -> None:
    tr = tmp_path / "tr"
    _translate(ScriptedBackend(translator), tr, questions="Q1", styles="paper_persona")
    be = _student()
    with pytest.raises(DataError) as err:
        evaluate(be, _eval_cfg(tmp_path, "ev", languages="China=zh,Germany=de", translations=tr))
    msg = str(err.value)
    assert "\n" not in msg and be.calls == [] and not (tmp_path / "ev" / "per_question.jsonl").exists()
    assert "no zh translation (Simplified Chinese) for China of question(s) Q7" in msg
    assert "style(s) paper_cultural" in msg and str(tr) in msg
    assert (
        f"clca translate --languages zh --questions Q1,Q7 --styles paper_persona,paper_cultural --out {tr}"
        in msg
    )
    # Germany's released template names Germany: China evaluated in German has no paper_persona@de
    with pytest.raises(DataError, match=r"released for Germany.*--include-released"):
        localise(tr, {"China": "de"}, resolve_styles(["paper_persona"]), [], questions="Q1")
    with pytest.raises(DataError, match=r"no translations folder is set \(--translations"):
        evaluate(be, _eval_cfg(tmp_path, "ev", languages="China=zh"))
    # the CLI checks the same before it loads a model
    assert main(["eval", "--model", "scripted:auto", "--countries", "China", "--questions", "Q1,Q7",
                 "--styles", "plain", "--languages", "China=zh", "--translations", str(tr), "--out",
                 str(tmp_path / "cli"), "--no-cache", "--no-progress"]) == 2  # fmt: skip
    assert not (tmp_path / "cli").exists()


def test_eval_languages_setting() -> None:
    s = EvalSettings.model_validate({"languages": "China=zh, Germany = DE,Great Britain=en"})
    assert s.languages == {"China": "zh", "Germany": "de"}
    assert EvalSettings.model_validate({"languages": {"Mexico": "es-MX"}}).languages == {"Mexico": "es-mx"}
    for bad, msg in (
        ("China:zh", "country=code"),
        ("China=zh1!", "not a language code"),
        ("=zh", "country=code"),
    ):
        with pytest.raises(ValueError, match=msg):
            EvalSettings.model_validate({"languages": bad})
    # without languages the settings dump (metrics.json, the pipeline's settings hash) is what it was
    dump = EvalSettings().model_dump(mode="json")
    assert "languages" not in dump and "translations" not in dump
    with pytest.raises(ValueError, match="en is the language of the sources"):
        TranslateSettings.model_validate({"languages": "zh,en"})
    assert TranslateSettings().languages == ["zh", "de", "ja", "es"]


def test_translate_cli(tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "tr"
    args = ["translate", "--model", "scripted:auto", "--languages", "zh,de", "--questions", "Q1", "--styles",
            "paper_persona,cultural", "--out", str(out), "--no-cache", "--no-progress"]  # fmt: skip
    assert main(args) == 0
    assert "4 translated" in " ".join(capsys.readouterr().out.split())
    for lang in ("zh", "de"):
        tf = TranslationDir(out).machine(lang)
        assert tf is not None and set(tf.questions) == {"Q1"} and set(tf.styles) == {"cultural"}
        assert tf.questions["Q1"].model == "scripted:auto"
    assert main(["translate", "--model", "scripted:auto", "--languages", "xx!", "--out", str(out)]) == 2
    assert "--languages" in capsys.readouterr().err


def test_pipeline_translates_then_evaluates_in_the_languages(tmp_path: Path, data_dir: Path) -> None:
    """The demo config with the paper protocol and eval.languages on scripted models: the plan shows the
    languages and the translate stage before the evaluations; the run writes the translations into the run
    directory, evaluates China in Chinese too, and the report has the language rows."""
    from test_pipeline import SCRIPTED, World

    from clca.config import load_config
    from clca.pipeline import plan_stages
    from clca.rundir import RunDir

    overrides = [
        f"run_dir={tmp_path / 'run'}", *SCRIPTED, "models.intents=scripted:auto", "eval.protocol=paper",
        f"eval.respondents={FIX / 'wvb'}", "eval.personas=2", "eval.questions=Q1-Q3",
        "eval.languages={China: zh, Japan: ja}", "train.seeds=[0]",
    ]  # fmt: skip
    cfg = load_config(ROOT / "configs" / "demo.yaml", overrides)
    stages = {s.name: s for s in plan_stages(cfg)}
    tr = stages["translate"]
    assert tr.settings["languages"] == ["zh"] and tr.settings["teacher"] == "scripted:auto"
    assert tr.outputs == [tmp_path / "run" / "translations" / "zh.machine.yaml"]
    assert "translate" in stages["eval:base"].settings["upstream"]
    assert all("translate" in s.settings["upstream"] for n, s in stages.items() if n.startswith("eval:"))
    # without eval.languages: no translate stage, and the evaluations' settings are what they were
    no_languages = [o for o in overrides if not o.startswith("eval.languages")]
    plain = {s.name: s for s in plan_stages(load_config(ROOT / "configs" / "demo.yaml", no_languages))}
    assert "translate" not in plain and plain["eval:base"].settings["upstream"] == {}
    assert "languages" not in plain["eval:base"].settings

    world = World()
    res = world.run(cfg)
    assert {s["status"] for s in res.stages} == {"done"}
    assert any("China also in zh" in n for n in res.notes) and any("Japan (ja)" in n for n in res.notes)
    run = RunDir(cfg.run_dir)
    assert run.translations().machine("zh") is not None
    recs = run.eval_records()
    zh = [r for r in recs if r.language == "zh"]
    assert {r.style for r in zh} == {"paper_persona@zh", "paper_cultural@zh"} and {r.country for r in zh} == {
        "China"
    }
    assert {r.model_tag for r in zh} == {r.model_tag for r in recs}  # every model, like the English ones
    ba = run.before_after()
    assert ba is not None and ba.styles == ["paper_persona", "paper_cultural"]
    assert [(r.culture, r.language) for r in ba.languages] == [("China", "zh"), ("Average", "all")]
    row = ba.languages[0]
    assert row.cell("base", "paper_persona", "kl") is not None and "paper_persona|kl" in row.change
    assert all(r.language is None for r in ba.rows)  # the English rows
    assert {v.style for v in ba.verdicts if v.culture == "Great Britain"} == {
        "paper_persona",
        "paper_cultural",
    }
    assert {c for r in ba.matrix["paper_persona@zh"]["kl"] for c in r.cells} == {"China"}
    page = (run.report_dir / "index.html").read_text(encoding="utf-8")
    assert "Multilingual evaluation" in page and "paper_persona@zh prompts" in page


def test_plan_of_the_paper_config_shows_the_languages(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paper = str(ROOT / "configs" / "paper.yaml")
    main(["run", paper, "--plan", "--set", f"run_dir={tmp_path / 'p'}"])
    captured = capsys.readouterr()
    text = " ".join((captured.out + captured.err).split())
    assert "China also in zh" in text and "Mexico also in es" in text and "Great Britain also" not in text
    assert "translate" in text
    main(["run", paper, "--plan", "--json", "--set", f"run_dir={tmp_path / 'p'}"])
    doc = json.loads(capsys.readouterr().out)
    assert doc["config"]["eval"]["languages"] == {
        "China": "zh",
        "Germany": "de",
        "Japan": "ja",
        "Mexico": "es",
    }
    tr = next(s for s in doc["stages"] if s["stage"] == "translate")
    assert tr["outputs"] == [f"translations/{c}.machine.yaml" for c in ("zh", "de", "ja", "es")]
    assert [r["stage"] for r in doc["cost"]["rows"]][-2:] == ["translate", "eval"]
    # clca run --executor: the translations are a unit of their own (the generate kind's resources), and every
    # evaluation waits for it, but not for the generation stages
    units = {u["name"]: u for u in doc["units"]}
    assert units["translate"]["kind"] == "generate" and units["translate"]["stages"] == ["translate"]
    assert units["eval:base"]["deps"] == ["translate"] and "translate" in units["eval:clca-china-s0"]["deps"]
    assert not (tmp_path / "p").exists()


@pytest.mark.slow
def test_smoke_translate_and_evaluate_in_chinese_on_the_embedded_models(tmp_path: Path) -> None:
    """The real teacher (Qwen2.5-Coder 0.5B) translates two questions into Chinese (a reply it cannot make
    usable is the re-ask / failure path: its entry then goes into the reviewed file, as a person would write
    it); the embedded SmolLM2 is then evaluated on them in Chinese, log-prob mode, with the paper's released
    Chinese persona template."""
    from clca.llm.registry import load_backend

    t0 = time.perf_counter()
    tr = tmp_path / "tr"
    ts = TranslateSettings(
        languages=["zh"], questions="Q1,Q7", styles=["paper_persona"], max_new_tokens=120, max_retries=0
    )
    items = load_survey(ts.survey).select(ts.questions)
    teacher = load_backend("embedded:qwen2.5-coder-0.5b", cache=False, batch_size=2)
    try:
        translate(teacher, tr, ts, items, resolve_styles(ts.styles))
    except ClcaError as exc:  # the failure path: what the model could not do, a person writes
        assert "stayed unusable" in str(exc)
        have = TranslationDir(tr).machine("zh")
        done = set(have.questions) if have is not None else set()
        fill = {
            i.qid: {"text": f"【人工】{i.text}", "options": list(i.options)}
            for i in items
            if i.qid not in done
        }
        (tr / "zh.reviewed.yaml").write_text(yaml.safe_dump({"questions": fill}, allow_unicode=True), "utf-8")
    finally:
        teacher.close()
    t_translate = time.perf_counter() - t0
    student = load_backend("embedded:smollm2-135m", cache=False, batch_size=8)
    try:
        res = evaluate(
            student,
            EvalConfig(
                out_dir=tmp_path / "ev",
                model_tag="smol",
                countries=["China"],
                questions="Q1,Q7",
                styles=["paper_persona"],
                respondents=FIX / "wvb",
                personas=2,
                languages={"China": "zh"},
                translations=tr,
            ),
        )
    finally:
        student.close()
    zh = [r for r in res.records if r.style == "paper_persona@zh"]
    assert len(zh) == 2 and all(r.mode == "logprob" and r.language == "zh" for r in zh)
    for r in zh:
        assert r.prompts[0].messages[0]["content"].startswith("您目前居住在中国")
        assert abs(sum(r.model_dist) - 1.0) < 1e-6 and r.prompts[0].format_mass is not None
    english = JsonlStore(tmp_path / "ev" / "per_question.jsonl", QuestionResult).all()
    assert {r.style for r in english} == {"paper_persona", "paper_persona@zh"}
    origins = sorted({r.translation["question"].split(":")[0] for r in zh})
    print(
        f"smoke: translate {t_translate:.1f} s ({', '.join(origins)}), total {time.perf_counter() - t0:.1f} s"
    )

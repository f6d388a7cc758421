"""Multilingual evaluation (the CLCA paper's §6.4): the survey and the prompt styles in another language.

**Where translations come from**, per language (``zh``, ``de``, ``ja``, ``es``, or any code), entry by entry
(one question, or one style's templates):

1. ``<lang>.reviewed.yaml`` in the translations folder: a person's corrections (optional); it wins;
2. the CLCA paper's released templates (``clca/evaluation/released/<lang>.yaml``: the style ``paper_persona``
   in zh, ja, de and es, from its ``wvs_evaluation.py``), for the country they name ("中国", "Deutschland", ...);
3. ``<lang>.machine.yaml``: written by :func:`translate` (``clca translate``) with a teacher model; an entry
   counts only while its recorded English source equals the current question or style (else it is stale).

Files: :class:`clca.rundir.TranslationDir`; shapes: :mod:`clca.records.translation`.

**Evaluating in a language** (``eval.languages``: country -> code): :func:`localise` gives, per country, the
translated styles (named ``<style>@<lang>``, e.g. ``paper_persona@zh``) and survey items (question text and
option labels translated; codes, scale and human distributions unchanged), with each one's provenance; a
missing or stale translation is one error before any work, naming the folder and ``clca translate``. Persona
attribute values stay as the respondent files give them (English), as in the paper's released code.

**Translating** (:func:`translate`): one JSON request per question (``{"text", "options"}``) and per style
(its non-empty templates, placeholders kept), through :func:`clca.llm.structured.generate_structured` (re-asks
with a repair turn); a reply whose option count or placeholders differ from the source is re-asked. Entries
already in the machine file (same source) are not asked again; the file is rewritten atomically after every
batch, so an interrupted run resumes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from clca.data.survey import SurveyItem
from clca.errors import ClcaError, DataError
from clca.evaluation.config import TranslateSettings
from clca.evaluation.styles import PLACEHOLDERS, Style, placeholders, split_name, translated_name
from clca.jsontext import JsonTextError, extract_json
from clca.llm.base import Backend, Chat, GenerationParams
from clca.llm.structured import StructuredStats, generate_structured
from clca.records import QuestionTranslation, StyleTranslation, TranslationFile
from clca.rundir import TranslationDir

#: the translation prompts' version (recorded in every machine entry; part of the pipeline stage's settings)
PROMPT_VERSION = "translate-v1"
#: the styles the CLCA paper's released code translated (one file per language)
RELEASED_DIR = Path(__file__).parent / "released"
#: how the prompts name a language (another code is named by its code)
LANGUAGE_NAMES = {
    "zh": "Simplified Chinese",
    "de": "German",
    "ja": "Japanese",
    "es": "Spanish (as spoken in Mexico)",
}
#: the style fields that are templates
TEMPLATE_FIELDS = ("system", "user", "answer_instruction")
#: placeholders a translated style must keep when its English one has them (the rest may be written out, as the
#: released templates write out their country)
REQUIRED_PLACEHOLDERS = frozenset({"question", "options"})

ProgressFn = Callable[[int, int], None]


def language_name(code: str) -> str:
    """The name the prompts use for ``code``."""
    return LANGUAGE_NAMES.get(code, f"the language with the code {code!r}")


def released_file(language: str) -> TranslationFile | None:
    """The templates of the paper's released code in ``language`` (``None`` when it has none)."""
    return TranslationDir(RELEASED_DIR).read(RELEASED_DIR / f"{language}.yaml")


def _source(style: Style) -> dict[str, str]:
    """A style's non-empty English templates, by field."""
    return {f: v for f in TEMPLATE_FIELDS if (v := getattr(style, f))}


def _fields_of(entry: StyleTranslation) -> dict[str, str]:
    return {f: v for f in TEMPLATE_FIELDS if (v := getattr(entry, f))}


def _same_source(entry: StyleTranslation, style: Style) -> bool:
    return (
        entry.source_system == style.system
        and entry.source_user == style.user
        and entry.source_answer_instruction == style.answer_instruction
    )


def _machine_ok(entry: StyleTranslation, style: Style) -> bool:
    """A machine translation of ``style`` that still stands: made from today's English text, placeholders kept."""
    return _same_source(entry, style) and check_style_entry(entry, style, strict=True) is None


def check_style_entry(entry: StyleTranslation, style: Style, *, strict: bool) -> str | None:
    """Why ``entry`` cannot stand for ``style`` (``None``: it can). ``strict`` (machine translations): every
    template keeps exactly its English placeholders; otherwise (reviewed, released) only known placeholders,
    and ``{question}`` / ``{options}`` wherever the English style has them, and a system message where it has
    one."""
    src, got = _source(style), _fields_of(entry)
    if style.system and not entry.system:
        return "it has no system template, but the English style has one"
    if not style.system and entry.system:
        return "it has a system template, but the English style has none"
    have: set[str] = set()
    for f, text in got.items():
        try:
            ph = placeholders(text)
        except ValueError:
            return f"its {f} is not a valid template (escape literal braces as {{{{ }}}})"
        if ph - PLACEHOLDERS:
            return f"its {f} uses unknown placeholder(s) {', '.join(sorted(ph - PLACEHOLDERS))}"
        if strict and ph != placeholders(src.get(f, "")):
            want = ", ".join(f"{{{p}}}" for p in sorted(placeholders(src.get(f, "")))) or "none"
            return (
                f"its {f} has placeholders {', '.join(f'{{{p}}}' for p in sorted(ph)) or 'none'}, not {want}"
            )
        have |= ph
    need = {p for text in src.values() for p in placeholders(text)} & REQUIRED_PLACEHOLDERS
    if need - have:
        return f"it lacks {', '.join(f'{{{p}}}' for p in sorted(need - have))}"
    return None


@dataclass(frozen=True)
class Localised:
    """One country's evaluation in a language: the translated styles (``<style>@<lang>``) and survey items by
    question id, and the provenance of each (``question``: per qid, ``style``: per English style name)."""

    language: str
    styles: list[Style]
    items: dict[str, SurveyItem]
    provenance: dict[str, dict[str, str]] = field(default_factory=dict)

    def translation(self, style: Style, qid: str) -> dict[str, str]:
        """The record's ``translation`` field: where its question and its style's templates come from."""
        base, _ = split_name(style.name)
        return {
            "question": self.provenance["question"][qid],
            "style": self.provenance["style"][base],
        }


class LanguageFiles:
    """The translation files of one language: reviewed (a person's), released (the paper's), machine."""

    def __init__(self, language: str, folder: Path | None) -> None:
        self.language = language
        self.folder = TranslationDir(folder) if folder is not None else None
        self.reviewed = self.folder.reviewed(language) if self.folder is not None else None
        self.machine = self.folder.machine(language) if self.folder is not None else None
        self.released = released_file(language)

    def _where(self, kind: str) -> str:
        assert self.folder is not None
        return str(self.folder.file(self.language, kind))

    @staticmethod
    def _origin(status: str, where: str, model: str = "") -> str:
        return f"{status}: {where}" + (f" ({model})" if model else "")

    def question(self, item: SurveyItem) -> tuple[QuestionTranslation, str] | str:
        """The winning translation of ``item`` and its provenance, or why there is none (``"missing"``,
        ``"stale"``). A reviewed entry whose option count differs, or that was reviewed against other English
        wording, is a one-line error."""
        if self.reviewed is not None and (r := self.reviewed.questions.get(item.qid)) is not None:
            where = self._where(TranslationDir.REVIEWED)
            if len(r.options) != item.k:
                raise DataError(
                    f"{where}: entry questions.{item.qid}.options: {len(r.options)} labels, but {item.qid} has "
                    f"{item.k} options ({'; '.join(item.options)}).",
                    fix="give one label per option, in the English order.",
                )
            if r.source_text and r.source_text != item.text:
                raise DataError(
                    f"{where}: entry questions.{item.qid} was reviewed against other English wording "
                    f"({r.source_text!r}; the survey now says {item.text!r}).",
                    fix="check the translation against the new wording and update its source_text (or delete "
                    "source_text to use it as it is).",
                )
            return r, self._origin("reviewed", where)
        if self.machine is not None and (m := self.machine.questions.get(item.qid)) is not None:
            if m.source_text != item.text or m.source_options != item.options or len(m.options) != item.k:
                return "stale"
            return m, self._origin("machine", self._where(TranslationDir.MACHINE), m.model)
        return "missing"

    def style(self, style: Style, country: str) -> tuple[StyleTranslation, str] | str:
        """The winning translation of ``style`` for ``country`` and its provenance, or why there is none
        (``"missing"``, ``"stale"``, ``"released for <country>"``). A reviewed entry that cannot stand for the
        style is a one-line error."""
        r = self.reviewed.styles.get(style.name) if self.reviewed is not None else None
        if r is not None and (not r.country or r.country.lower() == country.lower()):
            where = self._where(TranslationDir.REVIEWED)
            if (why := check_style_entry(r, style, strict=False)) is not None:
                raise DataError(
                    f"{where}: entry styles.{style.name}: {why}.",
                    fix="keep the English style's placeholders (such as {question}) in the templates.",
                )
            return r, self._origin("reviewed", where)
        other = ""
        if self.released is not None and (d := self.released.styles.get(style.name)) is not None:
            if d.country.lower() == country.lower():
                if check_style_entry(d, style, strict=False) is None:
                    return d, self._origin("released", d.source)
            else:
                other = f"released for {d.country}"
        if self.machine is not None and (m := self.machine.styles.get(style.name)) is not None:
            if not _machine_ok(m, style):
                return "stale"
            return m, self._origin("machine", self._where(TranslationDir.MACHINE), m.model)
        return other or "missing"


def localise_item(item: SurveyItem, entry: QuestionTranslation) -> SurveyItem:
    """``item`` with its text and option labels in the entry's language (codes and human side unchanged)."""
    return item.model_copy(update={"text": entry.text, "options": list(entry.options)})


def localise_style(style: Style, entry: StyleTranslation, language: str, origin: str) -> Style:
    """``style`` with the entry's templates, named ``<style>@<language>``."""
    return style.model_copy(
        update={
            "name": translated_name(style.name, language),
            "system": entry.system or None,
            "user": entry.user,
            "answer_instruction": entry.answer_instruction,
            "source": origin,
        }
    )


def _short(ids: Sequence[str], n: int = 6) -> str:
    return ", ".join(ids[:n]) + (f" (+{len(ids) - n} more)" if len(ids) > n else "")


def localise(
    folder: Path | None,
    languages: dict[str, str],
    styles: Sequence[Style],
    items: Sequence[SurveyItem],
    *,
    questions: str,
) -> dict[str, Localised]:
    """Per country of ``languages`` (country -> code): its styles and items in that language. Anything missing
    or stale is one :class:`DataError` (before any work) naming the folder and the ``clca translate`` command;
    ``questions``: the evaluation's selection (for that command)."""
    if languages and folder is None:
        codes = ",".join(dict.fromkeys(languages.values()))
        names = ",".join(s.name for s in styles)
        raise DataError(
            f"evaluating {', '.join(f'{c} in {code}' for c, code in languages.items())} needs translation files, "
            "but no translations folder is set (--translations, eval.translations).",
            fix=f"run `clca translate --languages {codes} --questions {questions} --styles {names} --out DIR`, "
            "then pass --translations DIR.",
        )
    out: dict[str, Localised] = {}
    files: dict[str, LanguageFiles] = {}
    for country, lang in languages.items():
        lf = files.setdefault(lang, LanguageFiles(lang, folder))
        missing_q: list[str] = []
        stale_q: list[str] = []
        got_items: dict[str, SurveyItem] = {}
        prov_q: dict[str, str] = {}
        for item in items:
            res = lf.question(item)
            if isinstance(res, str):
                (stale_q if res == "stale" else missing_q).append(item.qid)
                continue
            got_items[item.qid] = localise_item(item, res[0])
            prov_q[item.qid] = res[1]
        missing_s: list[str] = []
        released_elsewhere: list[str] = []
        got_styles: list[Style] = []
        prov_s: dict[str, str] = {}
        for style in styles:
            res_s = lf.style(style, country)
            if isinstance(res_s, str):
                missing_s.append(style.name + (" (stale)" if res_s == "stale" else ""))
                if res_s.startswith("released for"):
                    released_elsewhere.append(f"{style.name} ({res_s})")
                continue
            got_styles.append(localise_style(style, res_s[0], lang, res_s[1]))
            prov_s[style.name] = res_s[1]
        if missing_q or stale_q or missing_s:
            where = str(folder)
            parts = []
            if missing_q:
                parts.append(f"question(s) {_short(missing_q)}")
            if stale_q:
                parts.append(f"question(s) {_short(stale_q)} translated from other English wording (stale)")
            if missing_s:
                parts.append(f"style(s) {', '.join(missing_s)}")
            names = ",".join(s.name for s in styles)
            out_dir = str(folder)
            extra = (
                f"; {', '.join(released_elsewhere)}: the paper's template names its own country, so add "
                "--include-released or a reviewed entry"
                if released_elsewhere
                else ""
            )
            raise DataError(
                f"no {lang} translation ({language_name(lang)}) for {country} of {'; '.join(parts)} in {where} "
                f"({lang}.machine.yaml, {lang}.reviewed.yaml).",
                fix=f"run `clca translate --languages {lang} --questions {questions} --styles {names} --out "
                f"{out_dir}` (it resumes), or write those entries into {out_dir}/{lang}.reviewed.yaml{extra}.",
            )
        out[country] = Localised(lang, got_styles, got_items, {"question": prov_q, "style": prov_s})
    return out


def languages_for(languages: dict[str, str], countries: Sequence[str]) -> tuple[dict[str, str], list[str]]:
    """``eval.languages`` matched to the evaluated ``countries`` (case-insensitive, or the same culture by
    :func:`clca.culture.resolve_country`: "UK" is "Great Britain"): country -> code, and a note per entry
    naming a country that is not evaluated."""
    from clca.culture import resolve_country

    def canon(name: str) -> str:
        try:
            return resolve_country(name).lower()
        except ClcaError:
            return name.strip().lower()

    by = {canon(c): c for c in countries} | {c.lower(): c for c in countries}
    out: dict[str, str] = {}
    notes: list[str] = []
    for name, code in languages.items():
        hit = by.get(name.strip().lower()) or by.get(canon(name))
        if hit is None:
            notes.append(f"eval.languages names {name} ({code}), which is not evaluated; ignored")
        else:
            out[hit] = code
    return out, notes


# ------------------------------------------------------------------------------------------ translating


class TranslateSummary(BaseModel):
    """What :func:`translate` did: entries translated now, kept from the machine file, covered by a reviewed
    or a released entry, and failed (still unusable after the re-asks); per language the entries translated."""

    out_dir: str
    translated: int = 0
    kept: int = 0
    reviewed: int = 0
    released: int = 0
    failed: int = 0
    per_language: dict[str, int] = Field(default_factory=dict)
    failures: list[str] = Field(default_factory=list)
    llm: StructuredStats = Field(default_factory=StructuredStats)


@dataclass
class _Task:
    language: str
    kind: str  # "question" | "style"
    key: str  # qid or style name
    source: dict[str, Any]  # what the prompt shows (and the reply must mirror)
    item: SurveyItem | None = None
    style: Style | None = None


def _payload(source: dict[str, Any]) -> str:
    return json.dumps(source, ensure_ascii=False, indent=1)


def question_chat(item: SurveyItem, language: str) -> Chat:
    """The request that translates one survey question and its option labels."""
    name = language_name(language)
    user = (
        f"Translate this World Values Survey question and its answer options from English into {name}, as a "
        f"professional survey translator would for respondents who read only {name}. Keep the meaning, every "
        f"number and the scale exactly; translate each of the {item.k} option labels, in the same order. Reply "
        'with only a JSON object with the same keys ("text": the question, "options": a list of '
        f"{item.k} strings), without any explanation.\n\n"
        + _payload({"text": item.text, "options": list(item.options)})
    )
    return [
        {"role": "system", "content": f"You translate survey questionnaires from English into {name}."},
        {"role": "user", "content": user},
    ]


def style_chat(style: Style, language: str) -> Chat:
    """The request that translates one prompt style's templates (placeholders kept)."""
    name = language_name(language)
    user = (
        f"Translate the templates of this survey prompt from English into {name}, as a professional survey "
        f"translator would, in natural wording for respondents who read only {name}. Keep every placeholder in "
        "curly braces (such as {question}, {country} or {options}) exactly as written, untranslated, and keep "
        "the labels QUESTION: and ANSWER: in English where they occur. Reply with only a JSON object with the "
        "same keys, without any explanation.\n\n" + _payload(_source(style))
    )
    return [
        {"role": "system", "content": f"You translate survey questionnaires from English into {name}."},
        {"role": "user", "content": user},
    ]


def _schema(task: _Task) -> dict[str, object]:
    if task.kind == "question":
        props: dict[str, object] = {
            "text": {"type": "string"},
            "options": {"type": "array", "items": {"type": "string"}},
        }
    else:
        props = {k: {"type": "string"} for k in task.source}
    return {"type": "object", "properties": props, "required": list(props)}


def parse_question(reply: str, item: SurveyItem) -> tuple[str, list[str]]:
    """The translated text and option labels of a reply; ``ValueError`` naming what is wrong."""
    try:
        obj = extract_json(reply)
    except JsonTextError as exc:
        raise ValueError(str(exc)) from None
    text, options = obj.get("text"), obj.get("options")
    if not isinstance(text, str) or not text.strip():
        raise ValueError('the key "text" is missing or empty')
    if not isinstance(options, list) or not all(isinstance(o, str) and o.strip() for o in options):
        raise ValueError('the key "options" is not a list of non-empty strings')
    if len(options) != item.k:
        raise ValueError(f'"options" has {len(options)} labels, but the question has {item.k} options')
    return text.strip(), [o.strip() for o in options]


def parse_style(reply: str, style: Style) -> dict[str, str]:
    """The translated templates of a reply, each keeping exactly its English placeholders; ``ValueError``
    naming what is wrong."""
    try:
        obj = extract_json(reply)
    except JsonTextError as exc:
        raise ValueError(str(exc)) from None
    out: dict[str, str] = {}
    for f, src in _source(style).items():
        val = obj.get(f)
        if not isinstance(val, str) or not val.strip():
            raise ValueError(f'the key "{f}" is missing or empty')
        try:
            got = placeholders(val)
        except ValueError:
            raise ValueError(
                f'"{f}" has an unbalanced brace; keep placeholders such as {{question}} as they are'
            ) from None
        want = placeholders(src)
        if got != want:
            lost, extra = sorted(want - got), sorted(got - want)
            what = "; ".join(
                [*([f"lost {', '.join('{' + p + '}' for p in lost)}"] if lost else []),
                 *([f"added {', '.join('{' + p + '}' for p in extra)}"] if extra else [])]
            )  # fmt: skip
            raise ValueError(f'"{f}" must keep exactly the placeholders of the English text ({what})')
        out[f] = val.strip()
    return out


def _repair(chat: Chat, raw: str, exc: ValueError) -> Chat:
    return [
        *chat[:2],
        {"role": "assistant", "content": raw},
        {
            "role": "user",
            "content": f"That reply cannot be used: {exc}. Reply again with only the corrected JSON object, "
            "with the same keys.",
        },
    ]


def translate(
    backend: Backend,
    out_dir: Path,
    settings: TranslateSettings,
    items: Sequence[SurveyItem],
    styles: Sequence[Style],
    *,
    model: str | None = None,
    seed: int = 0,
    batch_size: int = 8,
    progress: ProgressFn | None = None,
) -> TranslateSummary:
    """Translate ``items`` (the survey questions ``settings.questions`` selects) and ``styles`` (those
    ``settings.styles`` names) into ``settings.languages`` with ``backend``, into ``out_dir/<lang>.machine.yaml``
    (see the module doc); resumable. ``model``: the spec recorded with every entry (default: the backend's).
    Entries that stay unusable after the re-asks are left out of the file and listed in a one-line error after
    the others are written."""
    spec = model or getattr(backend, "spec", "") or backend.fingerprint
    folder = TranslationDir(out_dir)
    summary = TranslateSummary(out_dir=str(out_dir))
    files: dict[str, TranslationFile] = {}
    tasks: list[_Task] = []
    for lang in settings.languages:
        lf = LanguageFiles(lang, out_dir)
        files[lang] = lf.machine or TranslationFile(language=lang)
        summary.per_language[lang] = 0
        for item in items:
            if lf.reviewed is not None and item.qid in lf.reviewed.questions:
                summary.reviewed += 1
                continue
            if isinstance(lf.question(item), tuple):
                summary.kept += 1
                continue
            tasks.append(
                _Task(lang, "question", item.qid, {"text": item.text, "options": item.options}, item=item)
            )
        for style in styles:
            r = lf.reviewed.styles.get(style.name) if lf.reviewed is not None else None
            if (
                r is not None and not r.country
            ):  # a reviewed entry for one country leaves the others to translate
                summary.reviewed += 1
                continue
            if not settings.include_released and lf.released is not None and style.name in lf.released.styles:
                summary.released += 1
                continue
            m = lf.machine.styles.get(style.name) if lf.machine is not None else None
            if m is not None and _machine_ok(m, style):
                summary.kept += 1
                continue
            tasks.append(_Task(lang, "style", style.name, _source(style), style=style))
    total = len(tasks)
    if progress:
        progress(0, total)
    groups: dict[str, list[_Task]] = {}
    for t in tasks:
        groups.setdefault(json.dumps(_schema(t), sort_keys=True), []).append(t)
    done = 0
    for schema_key, group in groups.items():
        params = GenerationParams(
            max_new_tokens=settings.max_new_tokens,
            temperature=0.0,
            seed=seed,
            json_schema=json.loads(schema_key),
        )
        for start in range(0, len(group), max(1, batch_size)):
            chunk = group[start : start + batch_size]
            chats = [
                question_chat(t.item, t.language) if t.item is not None else style_chat(t.style, t.language)  # type: ignore[arg-type]
                for t in chunk
            ]

            def parse(i: int, reply: str, chunk: list[_Task] = chunk) -> Any:
                t = chunk[i]
                return parse_question(reply, t.item) if t.item is not None else parse_style(reply, t.style)  # type: ignore[arg-type]

            results = generate_structured(
                backend,
                chats,
                parse,
                params,
                max_retries=settings.max_retries,
                seeds=[seed] * len(chunk),
                retry_chat=lambda i, chat, raw, exc: _repair(chat, raw, exc),
                stats=summary.llm,
            )
            touched: set[str] = set()
            for t, res in zip(chunk, results, strict=True):
                if res.value is None:
                    summary.failed += 1
                    summary.failures.append(f"{t.language} {t.kind} {t.key}: {res.error}")
                    continue
                tf = files[t.language]
                if t.item is not None:
                    text, options = res.value
                    tf.questions[t.key] = QuestionTranslation(
                        text=text, options=options, source_text=t.item.text, source_options=list(t.item.options),
                        model=spec, status="machine", prompt=PROMPT_VERSION,
                    )  # fmt: skip
                else:
                    st = t.style
                    assert st is not None
                    got: dict[str, str] = res.value
                    tf.styles[t.key] = StyleTranslation(
                        system=got.get("system"), user=got["user"], answer_instruction=got.get("answer_instruction", ""),
                        source_system=st.system, source_user=st.user, source_answer_instruction=st.answer_instruction,
                        model=spec, status="machine", prompt=PROMPT_VERSION,
                    )  # fmt: skip
                summary.translated += 1
                summary.per_language[t.language] += 1
                touched.add(t.language)
            for lang in sorted(touched):
                folder.write_machine(_ordered(files[lang], items, styles))
            done += len(chunk)
            if progress:
                progress(done, total)
    if summary.failed:
        raise ClcaError(
            f"{summary.failed} translation(s) stayed unusable after {settings.max_retries} re-ask(s) "
            f"({_short(summary.failures, 3)}); the {summary.translated} others are in {out_dir}.",
            fix="rerun the same command (it resumes, and re-asks with new seeds), use a stronger --model, or write "
            "those entries into <lang>.reviewed.yaml there.",
        )
    return summary


def _ordered(tf: TranslationFile, items: Sequence[SurveyItem], styles: Sequence[Style]) -> TranslationFile:
    """``tf`` with the questions and styles of this selection in the survey's and the selection's order (others
    after them, as they were)."""
    q_order = [i.qid for i in items if i.qid in tf.questions] + [
        q for q in tf.questions if q not in {i.qid for i in items}
    ]
    s_order = [s.name for s in styles if s.name in tf.styles] + [
        s for s in tf.styles if s not in {x.name for x in styles}
    ]
    return tf.model_copy(
        update={
            "questions": {q: tf.questions[q] for q in q_order},
            "styles": {s: tf.styles[s] for s in s_order},
        }
    )

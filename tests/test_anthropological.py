"""The paper's anthropological-prompting baseline (issue #24): the ``paper_anthropological`` style, a persona plus
AlKhamissi et al.'s anthropological reasoning guidance, beside the short persona-free ``anthropological`` style."""

from __future__ import annotations

from pathlib import Path

import pytest

from clca.data.survey import SurveyItem
from clca.data.wvb import Respondent
from clca.evaluation import EvalConfig, evaluate
from clca.evaluation.config import EvalSettings
from clca.evaluation.prompts import render_messages
from clca.evaluation.styles import builtin_styles
from clca.llm.testing import ScriptedBackend

FIX = Path(__file__).parent / "fixtures"

ITEM = SurveyItem(
    qid="Q1",
    text="How important is family in your life?",
    options=["Very important", "Rather important", "Not very important", "Not at all important"],
    codes=[1, 2, 3, 4],
)

#: AlKhamissi et al. (2024)'s anthropological framework, as published (trailing spaces removed)
GUIDANCE = [
    "The following is a framework adapted from the toolkit of anthropological methods:",
    "- Emic and Etic Perspectives: emic and etic perspectives means that there are in-group ways of answering or "
    "thinking about a question or a problem and there are out-group ways.",
    "- Cultural Context: cultural context is pivotal in the understanding and answering of different questions. "
    "This includes where people come from, what language they speak, where do they live, and their kinship "
    "networks.",
    "- Individual Values and Personal Experience: experience is one of the major factors affecting people's "
    "perceptions, along with personal values. Both play a big role in subjective understandings of day to day to "
    "life.",
    "- Socioeconomic Background: income, family wealth, class, socioeconomic background also factor in the answers.",
    "- Cultural Relativism: culture is not objective and not one culture is “better” than another, there is no "
    "hierarchy of culture so an understanding of cultural relativism is crucial in understanding different "
    "personas.",
    "- Space and Time: age and place are also important factors.",
    "- Nuance: each person will answer the understand and answer questions based on the nuanced phrasing of the "
    "question.",
]
REASONING = (
    "First, provide your reasoning based on the anthropological framework described above in one coherent "
    "paragraph then select exactly one option from the options below by typing the number corresponding to your "
    "chosen answer on a new line."
)


def test_the_style_loads_beside_the_short_one() -> None:
    st = builtin_styles()
    paper, short = st["paper_anthropological"], st["anthropological"]
    assert paper.needs_persona and paper.reasoning and paper.max_reasoning_tokens >= 256
    assert paper.system == st["paper_persona"].system  # the CLCA paper's Table 20 persona
    assert paper.answer_instruction == REASONING
    assert short.reasoning and not short.needs_persona  # the shortened, persona-free style stays


def test_it_renders_a_persona_and_the_published_guidance() -> None:
    r = Respondent(
        id="1",
        country="China",
        demographics={
            "settlement": "Capital city",
            "region": "Urban",
            "gender": "Female",
            "age": "25-34 years",
        },
    )
    system, user = render_messages(builtin_styles()["paper_anthropological"], ITEM, "China", r)
    assert system["role"] == "system" and system["content"].startswith(
        "You are currently living in China and here is your basic demographic information:\n"
        "Settlement: Capital city, Urban\nGender: Female\nAge: 25-34 years\nBorn in China: unknown"
    )
    assert user["role"] == "user"
    assert user["content"] == "\n".join(
        [
            *GUIDANCE,
            "",
            "Now:",
            "",
            "Answer the following question from this perspective.",
            "Others will read what you choose; your goal is to convince them it was chosen from the perspective of "
            "the persona described above.",
            "",
            REASONING,
            "Question: How important is family in your life?",
            "Options:",
            "1. Very important",
            "2. Rather important",
            "3. Not very important",
            "4. Not at all important",
        ]
    )


def test_it_needs_respondent_files_and_reads_the_last_line(tmp_path: Path, data_dir: Path) -> None:
    reply = "Family is the centre of life for a woman of her age in a Chinese city.\n1"
    be = ScriptedBackend(reply, spec="scripted:test", fingerprint="scripted-v1")
    base: dict[str, object] = {
        "out_dir": tmp_path / "ev",
        "model_tag": "m1",
        "countries": ["China"],
        "questions": "Q1",
        "styles": ["paper_anthropological"],
        "mode": "generate",
        "parser": "clca",
        "max_new_tokens": 16,
    }
    res = evaluate(be, EvalConfig.model_validate({**base, "respondents": str(FIX / "wvb"), "personas": 2}))
    (rec,) = res.records
    assert {p.persona_id for p in rec.prompts} == {"156070001", "156070002"}
    assert all(p.parsed == [1] and p.generations == [reply] for p in rec.prompts)
    system, user = rec.prompts[0].messages
    assert "Settlement: " in system["content"] and GUIDANCE[1] in user["content"]
    # the reasoning budget is added to the answer's tokens
    assert (
        be.calls[0].params.max_new_tokens
        == 16 + builtin_styles()["paper_anthropological"].max_reasoning_tokens
    )
    with pytest.raises(Exception, match="--respondents"):
        evaluate(be, EvalConfig.model_validate({**base, "model_tag": "m2"}))


def test_the_paper_protocol_takes_it_with_50_personas_and_the_clca_parser() -> None:
    s = EvalSettings(
        protocol="paper", styles=["paper_persona", "paper_anthropological"], personas=50, parser="clca"
    )
    assert s.mode == "generate" and s.temperature == 0.0 and s.personas == 50 and s.parser == "clca"


def test_a_style_sets_its_own_persona_count_and_parser(tmp_path: Path, data_dir: Path) -> None:
    """A style's ``personas`` and ``parser`` override the evaluation's for that style only: the paper's persona
    style keeps eval.personas and the paper parser, while a style asking for 1 persona and the clca parser gets
    them (the paper's anthropological baseline: 50 personas, answers read by clca's parser)."""
    assert builtin_styles()["paper_anthropological"].personas == 50
    assert builtin_styles()["paper_anthropological"].parser == "clca"
    one = tmp_path / "one.yaml"
    one.write_text(
        "name: one_persona\nsystem: 'You live in {country}.\\n{persona}'\nneeds_persona: true\npersonas: 1\n"
        "parser: clca\n",
        encoding="utf-8",
    )
    # "2. ..." is 2 for clca's parser and unparseable for the paper's (a number glued to a dot and words)
    be = ScriptedBackend("2. Rather important", spec="scripted:test", fingerprint="scripted-v1")
    cfg = EvalConfig.model_validate(
        {
            "out_dir": tmp_path / "ev",
            "model_tag": "m1",
            "countries": ["China"],
            "questions": "Q1",
            "styles": ["paper_persona", "one_persona"],
            "style_files": [str(one)],
            "protocol": "paper",
            "personas": 2,
            "respondents": str(FIX / "wvb"),
            "max_new_tokens": 16,
        }
    )
    assert cfg.parser == "paper"
    res = evaluate(be, cfg)
    by_style = {r.style: r for r in res.records}
    assert set(by_style) == {"paper_persona", "one_persona"}
    assert len(by_style["paper_persona"].prompts) == 2 and by_style["paper_persona"].parser == "paper"
    assert len(by_style["one_persona"].prompts) == 1 and by_style["one_persona"].parser == "clca"
    assert [p.parsed for p in by_style["paper_persona"].prompts] == [[None], [None]]
    assert by_style["one_persona"].prompts[0].parsed == [2]
    assert by_style["one_persona"].prompts[0].parsed_other == [None]

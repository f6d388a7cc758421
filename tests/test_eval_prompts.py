"""Prompt styles (YAML), rendering, and free-text answer parsing."""

from __future__ import annotations

from pathlib import Path

import pytest

from clca.data.survey import SurveyItem
from clca.data.wvb import Respondent
from clca.errors import DataError
from clca.evaluation.parsers import parse_answer, split_reasoning
from clca.evaluation.prompts import render_messages, render_options
from clca.evaluation.styles import builtin_styles, load_style_file, resolve_styles

ITEM = SurveyItem(
    qid="Q1",
    text="How important is family in your life?",
    options=["Very important", "Rather important", "Not very important", "Not at all important"],
    codes=[1, 2, 3, 4],
)


def test_builtin_styles_present() -> None:
    st = builtin_styles()
    assert {"plain", "cultural", "persona", "anthropological"} <= set(st)
    assert st["persona"].needs_persona and st["anthropological"].reasoning and not st["plain"].system


def test_cultural_prompt_exact_sentence() -> None:
    msgs = render_messages(builtin_styles()["cultural"], ITEM, "Japan")
    assert msgs[0] == {
        "role": "system",
        "content": "You are an average human being born in Japan and living in Japan responding to the following survey question.",
    }
    assert msgs[1]["role"] == "user"
    assert msgs[1]["content"] == (
        "How important is family in your life?\n\n1. Very important\n2. Rather important\n3. Not very important\n"
        "4. Not at all important\n\nAnswer with the number of one option only."
    )


def test_plain_has_no_system_and_persona_lists_demographics() -> None:
    st = builtin_styles()
    assert [m["role"] for m in render_messages(st["plain"], ITEM, "China")] == ["user"]
    r = Respondent(
        id="1", country="China", demographics={"settlement": "Urban", "gender": "Female", "age": "34"}
    )
    sys_msg = render_messages(st["persona"], ITEM, "China", r)[0]["content"]
    assert "lives in China" in sys_msg and "Settlement: Urban\nGender: Female\nAge: 34" in sys_msg
    assert render_options(ITEM).splitlines()[3] == "4. Not at all important"


def test_user_style_file(tmp_path: Path) -> None:
    p = tmp_path / "mine.yaml"
    p.write_text(
        'name: mine\nsystem: "You live in {country}."\nuser: "{question}\\n{options}\\n{answer_instruction}"\n'
    )
    (s,) = resolve_styles("mine", [p])
    assert render_messages(s, ITEM, "Germany")[0]["content"] == "You live in Germany."
    p.write_text('name: bad\nsystem: "You live in {land}."\n')
    with pytest.raises(DataError, match="unknown placeholder"):
        load_style_file(p)
    p.write_text("name: [unclosed\n")
    with pytest.raises(DataError, match="not valid YAML"):
        load_style_file(p)
    with pytest.raises(DataError, match="unknown prompt style 'nope'"):
        resolve_styles("plain,nope")


@pytest.mark.parametrize(
    ("text", "reasoning", "expected"),
    [
        ("2", False, 2),
        ("2. Rather important", False, 2),
        ("I would say 3", False, 3),
        ("Answer: 4", False, 4),
        ("10", False, None),  # not an option code
        ("Very important", False, None),
        ("", False, None),
        ("Family matters, on a 1 to 4 scale... Answer: 1", True, 1),
        ("Considering 3 things.\nAnswer: **2**", True, 2),
        ("I think the answer is 3", True, 3),
        ("Reasoning about 2 and 4 without a final line", True, 4),
        ("Family comes first.\nOn a scale of 1 to 4, I pick 2", True, 2),  # the echoed scale is no answer
        ("Family comes first (question 3).\nAnswer: 1 to 4", True, None),  # a range after the tag
    ],
)
def test_parse_answer(text: str, reasoning: bool, expected: int | None) -> None:
    assert parse_answer(text, [1, 2, 3, 4], reasoning=reasoning) == expected


def test_parse_answer_multi_digit_codes() -> None:
    codes = list(range(1, 11))
    assert parse_answer("10", codes) == 10
    assert parse_answer("1", codes) == 1
    assert split_reasoning("Because of X.\nAnswer: 3") == "Because of X."


def test_parse_answer_in_words() -> None:
    """No number in the reply: the option labels are matched as whole phrases, the longest wins."""
    codes = [1, 2, 3, 4]
    options = ["Very important", "Rather important", "Not very important", "Not at all important"]
    assert parse_answer("Not very important.", codes, options=options) == 3
    assert parse_answer("I'd say: very important!", codes, options=options) == 1
    assert parse_answer("NOT AT ALL IMPORTANT", codes, options=options) == 4
    assert parse_answer("important", codes, options=options) is None  # no whole label
    assert parse_answer("Not very important.", codes) is None  # no labels given: integers only
    assert parse_answer("2 - rather important", codes, options=options) == 2  # a number still comes first
    assert parse_answer("Yes", [1, 2], options=["Mentioned", "Not mentioned"]) is None
    assert parse_answer("Mentioned. Not mentioned.", [1, 2], options=["Mentioned", "Not mentioned"]) == 2

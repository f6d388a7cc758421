"""Chat rendering and turn boundaries (:mod:`clca.llm.chat_template`): end of turn, special tokens, spans, masks.

The tokenizer tests are slow (they import transformers and load the embedded SmolLM2 tokenizer); the
Llama-3-style and Mistral-style templates run on a copy of it with those families' special tokens added.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from chat_templates import MISTRAL_LIKE

from clca.errors import ModelError
from clca.llm.base import Chat
from clca.llm.chat_template import (
    CHATML_TRAINING_TEMPLATE,
    CLCA_MISTRAL_TEMPLATE,
    END_OF_TURN,
    SPECIAL_TOKENS,
    assistant_char_spans,
    end_of_turn_id,
    end_of_turn_text,
    render_prompt,
    strip_special_tokens,
    student_chat_template,
    tokenize_with_assistant_masks,
    training_chat_template,
)

LLAMA3_LIKE = (
    "{{- bos_token }}{%- for m in messages %}"
    "{{- '<|start_header_id|>' + m['role'] + '<|end_header_id|>\n\n' + m['content'] | trim + '<|eot_id|>' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{%- endif %}"
)
#: the real Mistral-7B-Instruct-v0.3 chat template (tokenizer_config.json; where the copy comes from: the fixture's
#: "source")
MISTRAL_V03 = json.loads(
    (Path(__file__).parent / "fixtures" / "mistral_7b_instruct_v0.3_chat_template.json").read_text()
)
CONVERSATION: list[dict[str, str]] = [
    {"role": "system", "content": "You are Ana, a nurse."},
    {"role": "user", "content": "Hello there. "},
    {"role": "assistant", "content": " Hi! How are you?"},
    {"role": "user", "content": "Fine"},
    {"role": "assistant", "content": "Glad."},
]


# --------------------------------------------------------------------------------- without a tokenizer
@pytest.mark.parametrize("marker", END_OF_TURN)
def test_every_end_of_turn_marker_is_a_special_token(marker: str) -> None:
    assert SPECIAL_TOKENS.fullmatch(marker)
    assert strip_special_tokens(f"Hello.{marker}") == "Hello."


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("ACTION: speak\nOUTPUT: hi<|im_end|>", "ACTION: speak\nOUTPUT: hi"),
        ("<s>[INST] x</s> <end_of_turn><eos>", "[INST] x "),
        ("a <|eot_id|><|end_of_text|> b", "a  b"),
        ("<| x |>", ""),
        # not chat special tokens: kept as they are
        ("<|a|b|> </s > <S> <eos/> <end_of_turn", "<|a|b|> </s > <S> <eos/> <end_of_turn"),
        ("a < b | c > d", "a < b | c > d"),
    ],
)
def test_special_token_cleaning(raw: str, clean: str) -> None:
    assert strip_special_tokens(raw) == clean


def test_assistant_char_spans_cover_reply_and_end_marker() -> None:
    text = "<s>[INST] Hello there.[/INST] Hi! How are you?</s>[INST] You are Ana, a nurse.\n\nFine[/INST] Glad.</s>"
    spans = assistant_char_spans(text, CONVERSATION, END_OF_TURN)
    first = text.index(" Hi!")  # the content verbatim, its leading space included
    second = text.index("Glad.")
    assert spans == [(first, text.index("</s>") + 4), (second, len(text))]
    assert [text[a:b] for a, b in spans] == [" Hi! How are you?</s>", "Glad.</s>"]
    with pytest.raises(ModelError, match="does not render the assistant message 'Bye'"):
        assistant_char_spans(text, [{"role": "assistant", "content": "Bye"}], END_OF_TURN)


def test_spans_skip_whitespace_before_the_marker_and_stop_without_one() -> None:
    text = "U: q\nA: a1 \n<|im_end|>\nU: r\nA: a2\n"
    msgs = [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": "a1"},
        {"role": "user", "content": "r"},
        {"role": "assistant", "content": "a2"},
    ]
    spans = assistant_char_spans(text, msgs, ("<|im_end|>",))
    assert [text[a:b] for a, b in spans] == ["a1 \n<|im_end|>", "a2"]


# ------------------------------------------------------------------------------------ with a tokenizer
@pytest.fixture(scope="module")
def smol() -> Any:
    from transformers import AutoTokenizer

    from clca.llm.spec import resolve_local_model

    return AutoTokenizer.from_pretrained(str(resolve_local_model("embedded:smollm2-135m")))


def _variant(tok: Any, template: str, specials: list[str]) -> Any:
    out = copy.deepcopy(tok)
    if specials:
        out.add_special_tokens({"additional_special_tokens": specials})
    out.chat_template = template
    return out


@pytest.mark.slow
def test_smollm2_end_of_turn_and_prompt(smol: Any) -> None:
    assert end_of_turn_text(smol) == "<|im_end|>"
    assert end_of_turn_id(smol, "embedded:smollm2-135m") == smol.convert_tokens_to_ids("<|im_end|>")
    chat: Chat = [{"role": "user", "content": "Q?"}]
    assert render_prompt(smol, chat) == (
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
        "<|im_start|>user\nQ?<|im_end|>\n<|im_start|>assistant\n"
    )
    assert training_chat_template(smol) == CHATML_TRAINING_TEMPLATE


@pytest.mark.slow
def test_llama3_style_end_of_turn(smol: Any) -> None:
    tok = _variant(smol, LLAMA3_LIKE, ["<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"])
    assert end_of_turn_text(tok) == "<|eot_id|>"
    assert end_of_turn_id(tok, "llama") == tok.convert_tokens_to_ids("<|eot_id|>") != tok.eos_token_id
    prompt = render_prompt(tok, [{"role": "user", "content": " Q? "}])
    assert prompt.endswith("<|start_header_id|>user<|end_header_id|>\n\nQ?<|eot_id|>"
                           "<|start_header_id|>assistant<|end_header_id|>\n\n")  # fmt: skip


@pytest.mark.slow
def test_mistral_style_end_of_turn_and_eos_fallback(smol: Any) -> None:
    tok = _variant(smol, MISTRAL_LIKE, ["<s>", "</s>"])
    assert end_of_turn_text(tok) == "</s>"
    assert end_of_turn_id(tok, "mistral") == tok.convert_tokens_to_ids("</s>")
    plain = _variant(smol, MISTRAL_LIKE, [])  # "</s>" is plain text here: EOS closes the turn
    assert end_of_turn_text(plain) == "</s>" and end_of_turn_id(plain, "mistral") == plain.eos_token_id
    broken = _variant(smol, "{{ raise_exception('no assistant turns') }}", [])
    assert end_of_turn_text(broken) == "<|im_end|>" and end_of_turn_id(broken, "x") == broken.eos_token_id
    no_eos = copy.deepcopy(broken)
    no_eos.eos_token = None
    with pytest.raises(ModelError, match="model hf:x has no EOS token"):
        end_of_turn_id(no_eos, "hf:x")


@pytest.mark.slow
@pytest.mark.parametrize("family", ["smollm2", "mistral"])
def test_masks_cover_exactly_the_replies_and_their_end_marker(smol: Any, family: str) -> None:
    tok = smol if family == "smollm2" else _variant(smol, MISTRAL_LIKE, ["<s>", "</s>"])
    enc = tokenize_with_assistant_masks(tok, CONVERSATION)
    ids, mask = enc["input_ids"], enc["assistant_masks"]
    assert (
        ids == tok(tok.apply_chat_template(CONVERSATION, tokenize=False), add_special_tokens=False).input_ids
    )
    runs: list[list[int]] = []
    for i, (tid, m) in enumerate(zip(ids, mask, strict=True)):
        if m:
            if not i or not mask[i - 1]:
                runs.append([])
            runs[-1].append(tid)
    expected = {
        "smollm2": [" Hi! How are you?<|im_end|>", "Glad.<|im_end|>"],
        # trimmed replies after the template's " ": the first token (" Hi", " Glad") holds that space
        "mistral": [" Hi! How are you?</s>", " Glad.</s>"],
    }
    assert [tok.decode(r) for r in runs] == expected[family]
    if family == "mistral":
        with pytest.raises(ModelError, match="no training chat template"):
            training_chat_template(tok)


def _mistral_v03(smol: Any, template: str) -> Any:
    tok = _variant(smol, template, ["<s>", "</s>"])
    tok.bos_token, tok.eos_token = MISTRAL_V03["bos_token"], MISTRAL_V03["eos_token"]
    return tok


@pytest.mark.slow
def test_real_mistral_v03_template_drops_the_system_prompt_and_training_stops(smol: Any) -> None:
    """Mistral-7B-Instruct-v0.3's own template renders the system message only inside a final user turn: every
    training example ends on the assistant's reply, so its scenario and persona vanish. Tokenizing such an
    example for training stops in one line naming the template (it used to pass silently)."""
    tok = _mistral_v03(smol, MISTRAL_V03["chat_template"])
    system = CONVERSATION[0]["content"]
    text = tok.apply_chat_template(CONVERSATION, tokenize=False)
    assert text == "<s>[INST] Hello there. [/INST] Hi! How are you?</s>[INST] Fine[/INST] Glad.</s>"
    assert system not in text  # dropped ...
    assert system in tok.apply_chat_template(
        CONVERSATION[:-1], tokenize=False
    )  # ... unless a user turn ends it
    with pytest.raises(
        ModelError, match=r"drops the system prompt of a training example \('You are Ana"
    ) as exc:
        tokenize_with_assistant_masks(tok, CONVERSATION)
    assert "chat template of" in str(exc.value) and len(str(exc.value).splitlines()) == 1


@pytest.mark.slow
def test_mistral_students_get_the_released_clca_template(smol: Any) -> None:
    """For a Mistral [INST] template that drops the system prompt, the released CLCA code's template (system
    prompt first, after BOS) is used; the masks still cover exactly the replies and their </s>. Templates that
    keep the system prompt are left alone."""
    tok = _mistral_v03(smol, MISTRAL_V03["chat_template"])
    assert student_chat_template(tok) == CLCA_MISTRAL_TEMPLATE
    tok.chat_template = CLCA_MISTRAL_TEMPLATE
    text = tok.apply_chat_template(CONVERSATION, tokenize=False)
    assert text == (
        "<s>You are Ana, a nurse.\n\n\n[INST] Hello there. [/INST] Hi! How are you?</s>[INST] Fine [/INST] Glad.</s>"
    )  # the released template's own layout (its line breaks included)
    enc = tokenize_with_assistant_masks(tok, CONVERSATION)
    assert "You are Ana, a nurse." in tok.decode(enc["input_ids"])
    runs: list[list[int]] = []
    for i, (tid, m) in enumerate(zip(enc["input_ids"], enc["assistant_masks"], strict=True)):
        if m:
            if not i or not enc["assistant_masks"][i - 1]:
                runs.append([])
            runs[-1].append(tid)
    assert [tok.decode(r) for r in runs] == [" Hi! How are you?</s>", " Glad.</s>"]
    assert student_chat_template(smol) is None  # ChatML keeps the system prompt
    assert student_chat_template(_variant(smol, MISTRAL_LIKE, ["<s>", "</s>"])) is None
    assert student_chat_template(_variant(smol, LLAMA3_LIKE, [])) is None

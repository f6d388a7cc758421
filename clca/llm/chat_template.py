"""Chat rendering and assistant-turn boundaries: the one place that knows how a chat template lays out a turn.

Inference, scoring, training and output parsing must agree on where an assistant reply starts and ends, so
they all ask this module:

* :func:`render_prompt`: a chat rendered up to where the assistant's reply starts (local generation and
  scoring, the completions-echo scoring route).
* :func:`end_of_turn_text` / :func:`end_of_turn_id`: what the template writes after an assistant reply, found
  by rendering a closed turn around a sentinel reply; EOS when the template shows nothing usable (the local
  backend stops generating on that token).
* :data:`END_OF_TURN`: the end-of-turn strings chat templates use; :data:`SPECIAL_TOKENS` /
  :func:`strip_special_tokens`: the chat special tokens cleaned out of model output before it is parsed
  (:mod:`clca.roleplay.parse`). Every :data:`END_OF_TURN` marker matches :data:`SPECIAL_TOKENS`.
* Training (assistant-only loss, :mod:`clca.training.train`): :func:`training_chat_template` finds a template
  with ``{% generation %}`` markers that renders exactly like the tokenizer's own (its own when marked, TRL's
  patched template for known families, else :data:`CHATML_TRAINING_TEMPLATE` for ChatML); for templates
  without such a twin (Llama 3.1/3.2, Mistral), :func:`tokenize_with_assistant_masks` locates the replies in
  the rendered text (:func:`assistant_char_spans`). :func:`student_chat_template` swaps in the released CLCA
  code's Mistral template (:data:`CLCA_MISTRAL_TEMPLATE`) for a Mistral template that loses the system prompt,
  and :func:`check_system_rendered` stops a training whose rendered examples lack their system content.

Tokenizers are Hugging Face tokenizers (typed ``Any``); transformers and TRL are imported only when needed.
"""

from __future__ import annotations

import re
from typing import Any

from clca.errors import ModelError
from clca.llm.base import Chat, Message

#: a reply no template alters; what a template writes after it closes the assistant turn
_SENTINEL = "\u2063CLCA_SENTINEL\u2063"
#: the chat the end of an assistant turn is probed with
_PROBE_TURN: Chat = [{"role": "user", "content": "x"}]

#: strings a chat template may close an assistant turn with; the loss includes them (they teach the model to stop)
END_OF_TURN = (
    "<|eot_id|>",
    "<|im_end|>",
    "</s>",
    "<|end|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<|end_of_text|>",
)

#: chat special tokens a model may write into its output (``<|...|>``, ``<s>``, ``</s>``, Gemma's markers)
SPECIAL_TOKENS = re.compile(r"<\|[^|>]*\|>|</?s>|<end_of_turn>|<eos>")

#: ChatML (SmolLM2, Qwen-style ``<|im_start|>``) with generation markers around each assistant reply
CHATML_TRAINING_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'assistant' %}"
    "{{ '<|im_start|>assistant\\n' }}{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}"
    "{{ '\\n' }}"
    "{% else %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

#: The released CLCA code's chat template for Mistral students (UKPLab/arxiv2025-clca, training script: search
#: index file 7180271643, and the same text in its model wrapper, 7451983011), verbatim: the system prompt first,
#: right after BOS, then ``[INST] user [/INST] reply</s>`` turns. Mistral-7B-Instruct-v0.3's own template renders
#: the system prompt only inside a *final* user turn, so on training examples (which end on the assistant's
#: reply) it drops the scenario and persona silently; the paper trained and evaluated its Mistral students with
#: this template instead.
CLCA_MISTRAL_TEMPLATE = (
    "{% if messages[0]['role'] == 'system' %}{% set system_message = messages[0]['content'] | trim + '\n\n' %}"
    "{% set messages = messages[1:] %}{% else %}{% set system_message = '' %}{% endif %}{{ bos_token + system_message}}\n"
    "    {% for message in messages %}\n"
    "    {% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}\n"
    "        {{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}\n"
    "    {% endif %}\n"
    "    {% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] | trim + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ ' ' + message['content'] | trim + eos_token }}{% endif %}\n"
    "    {% endfor %}"
)

#: the conversation a candidate training template must render byte-identically to the tokenizer's own
_PROBE: list[Message] = [
    {"role": "system", "content": "You are Ana, a nurse."},
    {"role": "user", "content": "Hello there."},
    {"role": "assistant", "content": "Hi! How are you?"},
    {"role": "user", "content": "Fine, thanks."},
    {"role": "assistant", "content": "Glad to hear."},
]


# ------------------------------------------------------------------------------------------- inference
def render_prompt(tokenizer: Any, chat: Chat) -> str:
    """The prompt text of a chat, ending where the assistant's reply starts (the template's own errors pass)."""
    return str(tokenizer.apply_chat_template(list(chat), tokenize=False, add_generation_prompt=True))


def _after_reply(tokenizer: Any, chat: Chat) -> str | None:
    """The text the template writes after an assistant reply to ``chat``; None when rendering fails or the
    reply does not survive it."""
    try:
        closed = str(
            tokenizer.apply_chat_template(
                [*chat, {"role": "assistant", "content": _SENTINEL}],
                tokenize=False,
                add_generation_prompt=False,
            )
        )
    except Exception:  # a template without assistant turns, one that raises on them...
        return None
    return closed.split(_SENTINEL, 1)[1] if _SENTINEL in closed else None


def end_of_turn_text(tokenizer: Any, chat: Chat = _PROBE_TURN) -> str:
    """The text that closes an assistant reply to ``chat`` (trailing newlines dropped), else the EOS text."""
    eos = str(tokenizer.eos_token or "")
    after = _after_reply(tokenizer, chat)
    return (after if after is not None else eos).rstrip("\n") or eos


def end_of_turn_id(tokenizer: Any, name: str) -> int:
    """The special token that closes an assistant turn in the chat template, else EOS; ``name`` (the model's
    spec) names the model in the error when it has neither."""
    after = _after_reply(tokenizer, _PROBE_TURN)
    if after is not None:
        try:
            ids = tokenizer(after, add_special_tokens=False).input_ids
            if ids and ids[0] in set(tokenizer.all_special_ids):
                return int(ids[0])
        except Exception:  # a tokenizer that cannot encode the template's text
            pass
    if tokenizer.eos_token_id is None:
        raise ModelError(f"model {name} has no EOS token.", fix="use a chat model with a chat template.")
    return int(tokenizer.eos_token_id)


# --------------------------------------------------------------------------------------- model output
def strip_special_tokens(text: str) -> str:
    """``text`` without the chat special tokens a model wrote into it (:data:`SPECIAL_TOKENS`)."""
    return SPECIAL_TOKENS.sub("", text)


# -------------------------------------------------------------------------------------------- training
def _has_markers(template: str | None) -> bool:
    from trl.chat_template_utils import has_generation_markers

    return bool(template) and has_generation_markers(template)  # type: ignore[arg-type]


def training_chat_template(tokenizer: Any) -> str | None:
    """A chat template with ``{% generation %}`` markers that renders exactly like the tokenizer's own.

    Returns ``None`` when the tokenizer's template already has markers. Raises :class:`ModelError` when no
    candidate renders the probe conversation identically (then assistant-only loss cannot be trusted).
    """
    from trl.chat_template_utils import get_training_chat_template

    own = tokenizer.chat_template
    if isinstance(own, dict):
        own = own.get("default")
    if not own:
        raise ModelError(
            f"tokenizer of {tokenizer.name_or_path} has no chat template.",
            fix="use an instruct/chat model whose tokenizer ships a chat template.",
        )
    if _has_markers(own):
        return None
    reference = tokenizer.apply_chat_template(_PROBE, tokenize=False)
    candidates: list[str] = []
    try:
        trl_tpl = get_training_chat_template(tokenizer)
        if trl_tpl:
            candidates.append(trl_tpl)
    except (ValueError, TypeError, NotImplementedError):
        pass
    if "<|im_start|>" in own:
        candidates.append(CHATML_TRAINING_TEMPLATE)
    for tpl in candidates:
        try:
            rendered = tokenizer.apply_chat_template(_PROBE, tokenize=False, chat_template=tpl)
        except Exception:
            continue
        if rendered == reference and _has_markers(tpl):
            return tpl
    raise ModelError(
        f"no training chat template with generation markers matches the template of {tokenizer.name_or_path}.",
        fix="give the tokenizer a chat template with {% generation %} markers (see docs/training.md).",
    )


def template_name(tokenizer: Any) -> str:
    """How an error names the tokenizer's current chat template."""
    if tokenizer.chat_template == CLCA_MISTRAL_TEMPLATE:
        return "the released CLCA code's Mistral template"
    return f"the chat template of {tokenizer.name_or_path}"


def check_system_rendered(text: str, messages: list[dict[str, str]], template: str) -> None:
    """Stop when ``text`` (``messages`` rendered by ``template``) lacks the content of a system message: the
    scenario, the persona and the task would silently vanish from training."""
    for m in messages:
        if m["role"] == "system" and m["content"].strip() and m["content"].strip() not in text:
            raise ModelError(
                f"{template} drops the system prompt of a training example ({m['content'].strip()[:40]!r}...).",
                fix="use a chat template that renders the system message in every conversation (docs/training.md).",
            )


def drops_system_prompt(tokenizer: Any) -> bool:
    """Whether the tokenizer's chat template loses (or refuses) the system message of a conversation that ends on
    an assistant reply, as every training example does (Mistral v0.3 renders it only before a final user turn)."""
    try:
        text = str(tokenizer.apply_chat_template(_PROBE, tokenize=False))
    except Exception:  # a template that refuses system messages
        return True
    return str(_PROBE[0]["content"]) not in text


def student_chat_template(tokenizer: Any) -> str | None:
    """The chat template a student is trained (and, saved with its adapter, evaluated) with instead of its own:
    :data:`CLCA_MISTRAL_TEMPLATE` for a Mistral ``[INST]`` template that drops the system prompt of training
    examples, as the released CLCA code did; ``None``: the tokenizer's own template is kept."""
    own = tokenizer.chat_template
    if isinstance(own, dict):
        own = own.get("default")
    if own and "[INST]" in own and drops_system_prompt(tokenizer):
        return CLCA_MISTRAL_TEMPLATE
    return None


def assistant_char_spans(
    text: str, messages: list[dict[str, str]], end_markers: tuple[str, ...]
) -> list[tuple[int, int]]:
    """Character spans of the assistant replies in ``text`` (a conversation rendered by a chat template), each
    extended over the end-of-turn marker right after it.

    The user and assistant contents are found in order (system content is skipped: some templates, such as
    Mistral's, move it into the last user turn); a template that trims contents is allowed for. Raises
    :class:`ModelError` when a content is not in the rendered text.
    """
    spans: list[tuple[int, int]] = []
    cursor = 0
    for m in messages:
        if m["role"] == "system":
            continue
        content = m["content"]
        start = text.find(content, cursor)
        if start < 0:
            content = content.strip()
            start = text.find(content, cursor)
        if start < 0:
            raise ModelError(
                f"the chat template does not render the {m['role']} message {content[:40]!r} verbatim, so the "
                "assistant tokens cannot be found.",
                fix="give the tokenizer a chat template with {% generation %} markers (see docs/training.md).",
            )
        end = start + len(content)
        if m["role"] == "assistant":
            rest = text[end:]
            gap = len(rest) - len(rest.lstrip(" \n"))
            marker = next((mk for mk in end_markers if mk and rest[gap:].startswith(mk)), "")
            spans.append((start, end + (gap + len(marker) if marker else 0)))
        cursor = end
    return spans


def tokenize_with_assistant_masks(tokenizer: Any, messages: list[dict[str, str]]) -> dict[str, list[int]]:
    """``input_ids`` and ``assistant_masks`` (1 on the tokens of assistant replies and their end-of-turn
    marker) for a chat template without generation markers: the conversation is rendered once and tokenized
    with character offsets (a fast tokenizer is needed). A rendering without the system content stops
    (:func:`check_system_rendered`)."""
    text = tokenizer.apply_chat_template(messages, tokenize=False)
    check_system_rendered(text, messages, template_name(tokenizer))
    markers = tuple(dict.fromkeys([str(tokenizer.eos_token or ""), *END_OF_TURN]))
    spans = assistant_char_spans(text, messages, markers)
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    mask = [int(any(a < e and b > s for s, e in spans)) for a, b in enc["offset_mapping"]]
    return {"input_ids": list(enc["input_ids"]), "assistant_masks": mask}

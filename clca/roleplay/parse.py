"""Reading an agent's raw output into an act (``ACTION`` + ``OUTPUT``), robustly for small models.

:func:`parse_action` accepts the requested two-line format, numbered or decorated action words
("3. speak", "**Speak**"), one-line forms ("ACTION: speak OUTPUT: hi"), Sotopia's JSON
(``{"action_type": ..., "argument": ...}``), an ``OUTPUT`` label alone, and plain prose; it cuts text in which
the model goes on to speak for the other character, and refuses outputs that only speak for the other
character, template placeholders and empty utterances.
"""

from __future__ import annotations

import json
import re

from pydantic import BaseModel, ConfigDict

from clca.llm.chat_template import strip_special_tokens
from clca.records import Action


class ParsedAction(BaseModel):
    """The outcome of parsing one raw agent output: an act, or ``ok=False`` with the reason."""

    model_config = ConfigDict(frozen=True)
    ok: bool
    action: Action = "none"
    text: str = ""
    error: str = ""


_ACTION_WORDS: dict[str, Action] = {
    "none": "none",
    "nothing": "none",
    "no action": "none",
    "wait": "none",
    "non-verbal": "non-verbal",
    "nonverbal": "non-verbal",
    "non verbal": "non-verbal",
    "non-verbal communication": "non-verbal",
    "action": "non-verbal",
    "gesture": "non-verbal",
    "speak": "speak",
    "speaks": "speak",
    "speaking": "speak",
    "say": "speak",
    "says": "speak",
    "talk": "speak",
    "reply": "speak",
    "respond": "speak",
    "leave": "leave",
    "leaves": "leave",
    "leaving": "leave",
    "exit": "leave",
    "end": "leave",
}
_ACTION_NUMBERS: dict[str, Action] = {"1": "none", "2": "non-verbal", "3": "speak", "4": "leave"}

_JSON_ACTION = re.compile(r"""["']?action_type["']?\s*:\s*["']([^"']+)["']""", re.I)
_JSON_ARG = re.compile(r"""["']?argument["']?\s*:\s*"((?:[^"\\]|\\.)*)"?""", re.I | re.S)
_ACTION_LABEL = re.compile(
    r"(?:^|\n)[ \t*#>-]*(?:\*\*)?\s*(?:your\s+)?action(?:[ _]type)?\s*(?:is)?\s*(?:\*\*)?\s*[:=：-]\s*(?:\*\*)?",
    re.I,
)
_OUTPUT_LABEL = re.compile(
    r"(?:^|\n|\s)[ \t*#>-]*(?:\*\*)?\s*(?:your\s+)?(?:output|argument|utterance|response)\s*(?:is)?\s*(?:\*\*)?\s*[:=：]\s*(?:\*\*)?",
    re.I,
)


def normalize_action(word: str) -> Action | None:
    """Map a messy action word ("3. speak", "**Speak**", "Non-Verbal", "2") to an :data:`Action`, or None."""
    w = word.strip().strip("*\"'`[](){}<>.,;:!").strip().lower()
    if not w:
        return None
    m = re.match(r"^(\d)\s*[.):-]?\s*(.*)$", w)
    if m:
        rest = m.group(2).strip().strip("*\"'`[]().,;:!").strip()
        if rest:
            found = normalize_action(rest)
            if found is not None:
                return found
        return _ACTION_NUMBERS.get(m.group(1))
    w = re.sub(r"\s+", " ", w.replace("_", " "))
    if w in _ACTION_WORDS:
        return _ACTION_WORDS[w]
    if w.replace(" ", "-") in _ACTION_WORDS:
        return _ACTION_WORDS[w.replace(" ", "-")]
    first = re.split(r"[\s,.;:/|]+", w)[0]
    if first in _ACTION_WORDS:
        return _ACTION_WORDS[first]
    if first in ("non", "non-verbal"):
        return "non-verbal"
    return None


def _name_variants(name: str) -> list[str]:
    """Full name and first name (the forms a model uses when it starts speaking for someone)."""
    name = name.strip()
    if not name:
        return []
    out = [name]
    first = name.split()[0]
    if first != name and len(first) >= 2:
        out.append(first)
    return out


_ECHO_LINE = re.compile(
    r"turn\s*#|action types?\b|your (?:social )?goal|conversation history|no history available|it is your turn"
    r"|you are at turn|please only output|now reply as|your secret|here is the context|reply with exactly"
    r"|your turn\b|'s turn\b|your task\b",
    re.I,
)
_PROSE_REJECT = re.compile(
    r"\b(?:actions?|output|turn|goal|secret|history|interaction|conversation|summary|scenario|task|participants?)\b",
    re.I,
)


def _cut_other_speaker(text: str, other_name: str, own_name: str) -> str:
    """Keep the lines before the model starts another turn or echoes the prompt.

    A line is a cut point when it starts with either character's name followed by ``:``, ``said``,
    ``says``, ``- ACTION`` or ``[non-verbal]`` (the model writing the other's turn, or a second turn of its
    own), or when it echoes the prompt (``Turn #``, "action types", "your goal", "conversation history"...).
    The first line is checked for echoes too, so an output that merely repeats the prompt becomes empty.
    """
    speaker_pats = [
        re.compile(
            r"^[ \t*\"'(]*"
            + re.escape(name)
            + r"(?:\*\*)?\s*(?::|said\b|says\b|-\s*action|\[non-verbal\]|replies\b)",
            re.I,
        )
        for name in _name_variants(other_name) + _name_variants(own_name)
    ]
    lines = text.split("\n")
    kept: list[str] = []
    for i, line in enumerate(lines):
        if _ECHO_LINE.search(line):
            break
        if i > 0 and kept and "".join(kept).strip() and any(p.search(line) for p in speaker_pats):
            break
        kept.append(line)
    return "\n".join(kept)


def _clean_text(text: str, own_name: str) -> str:
    """Strip labels, quotes, markdown and a leading "Name:" from an utterance."""
    t = text.strip()
    for name in _name_variants(own_name):
        t = re.sub(r"^[*\"']*" + re.escape(name) + r"[*\"']*\s*(?:said|says)?\s*:\s*", "", t, flags=re.I)
    t = t.strip().strip("*").strip()
    if t[:1] in '"“':
        m = re.match(r"^[\"“]([^\"”]+)[\"”]", t)
        t = m.group(1).strip() if m else t[1:].strip()  # the quoted utterance; drop what trails it
    elif len(t) >= 2 and t[0] == "'" and t[-1] == "'":
        t = t[1:-1].strip()
    t = re.sub(r"[ \t]+", " ", t)
    t = re.sub(r"\n{2,}", "\n", t).strip()
    return t


def parse_action(raw: str, *, own_name: str = "", other_name: str = "") -> ParsedAction:
    """Parse one agent output into an act, tolerating what real (small) models write.

    Accepted, in this order: a JSON-ish ``{"action_type": ..., "argument": ...}`` (Sotopia's format);
    ``ACTION: x`` / ``OUTPUT: y`` labels in any case, with markdown, numbered action types ("3. speak"),
    a missing OUTPUT label (the rest of the text is the output), or a missing ACTION label with an OUTPUT
    (taken as speak); a bare ``Name: "utterance"`` or a quoted utterance (speak). The output is cut where the
    model starts writing the other character's turn (a line starting with either name, or ``Turn #``) or a
    second ACTION block, and stripped of quotes and trailing junk. ``speak``/``non-verbal`` need a non-empty
    output; ``none`` and ``leave`` do not. Anything else is ``ok=False`` with the reason.
    """
    text = strip_special_tokens(raw or "").replace("：", ":").replace("\r", "")
    text = re.sub(r"^\s*(?:assistant|<assistant>)\s*:?\s*\n", "", text.strip(), flags=re.I).strip()
    text = re.sub(r"^```(?:json)?\s*|\s*```\s*$", "", text).strip()
    if not text:
        return ParsedAction(ok=False, error="empty output")

    # 1) JSON-ish (Sotopia): {"action_type": "speak", "argument": "..."}
    ja = _JSON_ACTION.search(text)
    if ja:
        action = normalize_action(ja.group(1))
        if action is None:
            return ParsedAction(ok=False, error=f"unknown action type {ja.group(1)!r}")
        arg = _JSON_ARG.search(text)
        body = ""
        if arg:
            try:
                body = json.loads('"' + arg.group(1) + '"')
            except json.JSONDecodeError:
                body = arg.group(1)
        return _finish(action, _clean_text(body, own_name), own_name)

    # 2) ACTION / OUTPUT labels
    am = _ACTION_LABEL.search(text)
    if am:
        after = text[am.end() :]
        after_lines = after.split("\n", 1)
        action_line = after_lines[0]
        om_inline = _OUTPUT_LABEL.search(action_line)
        if om_inline:  # "ACTION: speak OUTPUT: hi" on one line
            action_word, body = action_line[: om_inline.start()], action_line[om_inline.end() :]
            body += "\n" + after_lines[1] if len(after_lines) > 1 else ""
        else:
            action_word = action_line
            rest = after_lines[1] if len(after_lines) > 1 else ""
            om = _OUTPUT_LABEL.search("\n" + rest)
            body = ("\n" + rest)[om.end() :] if om else rest
            if not om:
                # "ACTION: speak - Hello there" / "ACTION: speak, "Hello""
                split = re.match(r"^\s*([A-Za-z0-9. -]+?)\s*(?:[-–—,:]\s+|\s+(?=[\"“]))(.+)$", action_word)
                if split and normalize_action(split.group(1)) is not None and not rest.strip():
                    action_word, body = split.group(1), split.group(2)
        action = normalize_action(action_word)
        if action is None:
            return ParsedAction(ok=False, error=f"unknown action type {action_word.strip()[:40]!r}")
        body = _ACTION_LABEL.split(body, maxsplit=1)[0]  # a second ACTION block is junk
        body = _OUTPUT_LABEL.split(body, maxsplit=1)[0]  # so is a second OUTPUT label
        body = _cut_other_speaker("\n" + body, other_name, own_name)
        return _finish(action, _clean_text(body, own_name), own_name)

    # 3) OUTPUT label without ACTION: the model spoke
    om = _OUTPUT_LABEL.search("\n" + text)
    if om:
        body = _OUTPUT_LABEL.split(("\n" + text)[om.end() :], maxsplit=1)[0]
        body = _cut_other_speaker(body, other_name, own_name)
        return _finish("speak", _clean_text(body, own_name), own_name)

    # 4) no labels: 'Name: "..."', 'Name said: "..."', a quoted utterance, or plain prose
    body = _cut_other_speaker("\n" + text, other_name, own_name).strip()
    for name in _name_variants(own_name):
        m = re.match(
            r"^[*\"']*" + re.escape(name) + r"[*\"']*\s*(?:said|says)?\s*:\s*(.+)$", body, re.I | re.S
        )
        if m:
            return _finish("speak", _clean_text(m.group(1), own_name), own_name)
    speaks_as_other = r"[*\"']*\s*(?::|said\b|says\b|replies\b|\[non-verbal\])"
    if any(
        re.match(r"^[*\"']*" + re.escape(n) + speaks_as_other, body, re.I) for n in _name_variants(other_name)
    ):
        return ParsedAction(ok=False, error="the output speaks for the other character")
    first_line = body.split("\n", 1)[0]
    if body and not _PROSE_REJECT.search(first_line) and len(body.split()) >= 2:
        return _finish("speak", _clean_text(body, own_name), own_name)
    return ParsedAction(ok=False, error="no ACTION/OUTPUT found")


def _finish(action: Action, text: str, own_name: str) -> ParsedAction:
    """Apply the per-action rules on the (cleaned) output text."""
    if text.strip().upper() in ("NONE", "N/A", "<NONE>", "NULL", "[NONE]"):
        text = ""
    if action == "none":
        return ParsedAction(ok=True, action="none", text="")
    if action in ("speak", "non-verbal") and not text:
        return ParsedAction(ok=False, action=action, error=f"empty output for action {action}")
    if _ACTION_LABEL.search(text) or text.lstrip().startswith("<"):
        return ParsedAction(ok=False, action=action, error="output is a template placeholder or nested label")
    return ParsedAction(ok=True, action=action, text=text)

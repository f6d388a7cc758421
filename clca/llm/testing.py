"""A model-free backend for tests and dry runs (like lm-eval-harness's dummy model).

:class:`ScriptedBackend` answers ``generate`` with a function of the chat (and the item's seed, and the
request's JSON schema), and ``score`` with a function of the request (default: uniform over the options). It
records every call, so a test can check batch sizes, seeds and prompts. :func:`stage_reply` answers every clca
stage validly, so a whole pipeline runs without a model; the spec ``scripted:auto`` (``clca run --set
models.teacher=scripted:auto ...``) loads it from any config:

- a request carrying ``GenerationParams.json_schema`` (scenario names, adaptations, norm-based scenarios, the
  judge's answers) is answered from the schema (:func:`schema_reply`), as a structured-output server would:
  values come from the JSON object the prompt shows where the keys match (an adaptation keeps the scenario's
  fields), the rest is synthesised deterministically;
- the free-text stages (role-play ACTION/OUTPUT, judge label lines, INTENT:, survey answers) are recognised
  by their wording.

Every answer is deterministic in (prompt, seed).
"""

from __future__ import annotations

import hashlib
import inspect
import json
import math
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from clca.llm.base import Backend, Chat, GenerationParams, ScoreRequest, ScoreResult

Reply = Callable[..., str]
JsonSchema = Mapping[str, Any]


class Call(NamedTuple):
    """One ``generate`` call as the backend received it."""

    chats: list[Chat]
    params: GenerationParams
    seeds: list[int] | None


class ScriptedBackend(Backend):
    """Replies computed by ``reply(chat)``, ``reply(chat, seed)`` or ``reply(chat, seed, schema)`` (default
    :func:`stage_reply`; ``schema`` is the request's ``json_schema`` or ``None``); scores by ``score_fn(request)``
    (default: equal log-probs); ``crash_after`` injects a crash after that many calls."""

    def __init__(
        self,
        reply: Reply | str | None = None,
        *,
        score_fn: Callable[[ScoreRequest], list[float]] | None = None,
        spec: str = "scripted",
        fingerprint: str | None = None,
        crash_after: int | None = None,
    ) -> None:
        fn: Reply
        if reply is None:
            fn = stage_reply
        elif isinstance(reply, str):
            text = reply

            def fn(chat: Chat) -> str:
                return text

        else:
            fn = reply
        self._reply: Reply = fn
        self._arity = len(inspect.signature(fn).parameters)
        self._score = score_fn
        self.spec = spec
        self._fingerprint = fingerprint or spec
        #: every generate call, in order
        self.calls: list[Call] = []
        #: every score call's requests, in order
        self.score_calls: list[list[ScoreRequest]] = []
        self.closed = False
        #: fault injection: ``generate`` raises ``RuntimeError`` once this many calls were answered
        self.crash_after = crash_after
        #: seconds each generate call waits (see :data:`DELAY_ENV`)
        self.delay_s = 0.0

    @property
    def fingerprint(self) -> str:
        return self._fingerprint

    @property
    def batches(self) -> list[int]:
        """Chats per generate call, in order."""
        return [len(c.chats) for c in self.calls]

    @property
    def chats(self) -> list[Chat]:
        """Every chat received by ``generate``, in order."""
        return [chat for c in self.calls for chat in c.chats]

    def generate(
        self, chats: Sequence[Chat], params: GenerationParams, seeds: Sequence[int] | None = None
    ) -> list[str]:
        if self.crash_after is not None and len(self.calls) >= self.crash_after:
            raise RuntimeError("simulated crash")
        if self.delay_s:
            time.sleep(self.delay_s)
        self.calls.append(Call(list(chats), params, list(seeds) if seeds is not None else None))
        out = []
        for i, chat in enumerate(chats):
            seed = seeds[i] if seeds is not None else params.seed
            if self._arity >= 3:
                out.append(self._reply(chat, seed, params.json_schema))
            elif self._arity == 2:
                out.append(self._reply(chat, seed))
            else:
                out.append(self._reply(chat))
        return out

    def score(self, requests: Sequence[ScoreRequest]) -> list[ScoreResult]:
        self.score_calls.append(list(requests))
        out = []
        for r in requests:
            lps = self._score(r) if self._score is not None else [0.0] * len(r.options)
            out.append(ScoreResult(logprobs=[float(x) for x in lps], n_tokens=[1] * len(r.options)))
        return out

    def close(self) -> None:
        self.closed = True


# ------------------------------------------------------------------------------ answers from a JSON schema

#: names by culture (female first names, male first names, last names), and an international default; none
#: is a Sotopia character's name or part of a placeholder such as "Taro Yamada" (tests check both)
_NAME_POOLS: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "China": (
        ("Xiulan", "Fang", "Jing", "Meiling", "Yun", "Lihua"),
        ("Wei", "Jun", "Hao", "Bo", "Qiang", "Tao"),
        ("Wang", "Chen", "Liu", "Zhao", "Huang", "Zhou", "Xu", "Guo"),
    ),
    "Japan": (
        ("Yui", "Aiko", "Haruka", "Naoko", "Emi", "Sakura"),
        ("Kenji", "Hiroshi", "Takumi", "Daiki", "Shota", "Ren"),
        ("Sato", "Suzuki", "Takahashi", "Watanabe", "Ito", "Nakamura", "Kobayashi", "Kato"),
    ),
    "South Korea": (
        ("Jiwoo", "Seoyeon", "Minji", "Hyejin", "Eunji", "Soyoung"),
        ("Minjun", "Jihoon", "Hyunwoo", "Dongwook", "Seojun", "Taeyang"),
        ("Kim", "Park", "Choi", "Jung", "Kang", "Yoon", "Lim", "Han"),
    ),
    "India": (
        ("Priya", "Ananya", "Kavita", "Meera", "Sunita", "Divya"),
        ("Arjun", "Rohan", "Vikram", "Rahul", "Sanjay", "Karan"),
        ("Sharma", "Iyer", "Reddy", "Gupta", "Nair", "Das", "Mehta", "Joshi"),
    ),
    "Germany": (
        ("Katrin", "Anja", "Sabine", "Jana", "Franziska", "Ute"),
        ("Jonas", "Lukas", "Tobias", "Matthias", "Florian", "Uwe"),
        ("Schneider", "Fischer", "Weber", "Becker", "Wagner", "Hoffmann", "Schulz", "Koch"),
    ),
    "Great Britain": (
        ("Harriet", "Imogen", "Fiona", "Eleanor", "Niamh", "Beth"),
        ("Callum", "Rhys", "Alistair", "Owen", "Rupert", "Jamie"),
        ("Patel", "Hughes", "Clarke", "Wright", "Evans", "Turner", "Walsh", "Fraser"),
    ),
    "United States": (
        ("Keisha", "Madison", "Carmen", "Shannon", "Tamara", "Kayla"),
        ("Tyrone", "Dustin", "Marcus", "Travis", "Andre", "Cody"),
        ("Brooks", "Rivera", "Foster", "Coleman", "Hayes", "Nguyen", "Ortiz", "Price"),
    ),
    "Brazil": (
        ("Mariana", "Juliana", "Beatriz", "Camila", "Larissa", "Fernanda"),
        ("Thiago", "Rodrigo", "Gustavo", "Felipe", "Mateus", "Bruno"),
        ("Souza", "Oliveira", "Santos", "Pereira", "Costa", "Almeida", "Carvalho", "Lima"),
    ),
    "Mexico": (
        ("Guadalupe", "Ximena", "Valeria", "Lucía", "Daniela", "Paola"),
        ("Alejandro", "Diego", "Emiliano", "Jorge", "Luis", "Santiago"),
        ("Hernández", "García", "López", "Flores", "Morales", "Castillo", "Vargas", "Mendoza"),
    ),
    "Nigeria": (
        ("Chiamaka", "Ngozi", "Funmilayo", "Aisha", "Adaeze", "Folake"),
        ("Chinedu", "Emeka", "Tunde", "Ibrahim", "Oluwaseun", "Obinna"),
        ("Okafor", "Adeyemi", "Okonkwo", "Bello", "Eze", "Balogun", "Nwosu", "Abubakar"),
    ),
    "Egypt": (
        ("Nour", "Mariam", "Yasmin", "Heba", "Salma", "Dina"),
        ("Ahmed", "Omar", "Karim", "Mostafa", "Youssef", "Tarek"),
        ("Hassan", "Mahmoud", "Abdelrahman", "Farouk", "Said", "Mansour", "Fawzy", "Kamel"),
    ),
    "": (
        ("Ingrid", "Leila", "Marisol", "Anjali", "Keiko", "Zanele"),
        ("Tomas", "Kwame", "Arash", "Mateo", "Rustam", "Kenta"),
        ("Lindqvist", "Moreau", "Haddad", "Novak", "Okoye", "Reyes", "Tanaka", "Petrov"),
    ),
}
_PLACES = ("neighbourhood market", "family kitchen", "small office", "community centre", "train station café")
_OCCUPATIONS = (
    "teacher",
    "nurse",
    "engineer",
    "shop owner",
    "accountant",
    "chef",
    "bus driver",
    "pharmacist",
)
_PERSONALITIES = ("calm and careful", "warm and talkative", "direct and ambitious", "shy but stubborn")
_SECRETS = (
    "once borrowed money from a colleague and never paid it back",
    "is quietly planning to move to another city",
    "failed an important exam last year",
    "has been hiding a second job from the family",
)
_GOALS = (
    "share the costs of the trip fairly",
    "agree on a date for the family visit",
    "accept an apology for a past remark",
    "help with a difficult task at work",
)
_MISSING = object()  # a key the prompt's JSON does not have (``None`` is a JSON null)
_WORD = re.compile(r"[^\W\d_][\w'-]*")
_CHANGE_NAMES = re.compile(r"\b(change|replace|new|invent|rename)\b[^.;:\n]*\bnames?\b", re.I)
_ADAPT_VERB = re.compile(r"\b(adapt|update|rewrite|change)\b", re.I)


def _json_objects(text: str) -> tuple[list[dict[str, Any]], str]:
    """The outermost JSON objects written in ``text``, and the text without them."""
    decoder = json.JSONDecoder()
    objs: list[dict[str, Any]] = []
    rest: list[str] = []
    pos = start = 0
    while (pos := text.find("{", pos)) >= 0:
        try:
            obj, end = decoder.raw_decode(text, pos)
        except ValueError:
            pos += 1
            continue
        if isinstance(obj, dict):
            objs.append(obj)
            rest.append(text[start:pos])
            start = end
        pos = end
    rest.append(text[start:])
    return objs, " ".join(rest)


def _labels(text: str) -> dict[str, str]:
    """``Label: value`` lines of a free-text answer, keyed by the label's letters (lower case)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        m = re.match(r"\s*([A-Za-z][A-Za-z _-]*?)\s*:\s*(\S.*?)\s*$", line)
        if m:
            out.setdefault(_key(m.group(1)), m.group(2))
    return out


def _key(name: str) -> str:
    return re.sub(r"[^a-z]", "", name.lower())


def _culture(text: str) -> str:
    """The country the prompt is about: the one named most often (``""`` if none is)."""
    from clca.culture.names import COUNTRIES

    counts = {
        c.name: len(re.findall(rf"(?<![\w]){re.escape(c.name)}(?![\w])", text))
        for c in COUNTRIES
        if c.name in text
    }
    best = max(counts.items(), key=lambda kv: (kv[1], len(kv[0])), default=("", 0))
    return best[0] if best[1] else ""


def _mention(value: str, culture: str) -> str:
    """``value`` with the culture mentioned: ``A park (in Japan).``"""
    value = value.rstrip()
    end = "." if value.endswith(".") else ""
    return f"{value[: len(value) - len(end)]} (in {culture}){end}"


def _fits(schema: JsonSchema, value: Any) -> bool:
    """Whether ``value`` has a JSON type ``schema`` allows, or is one of its ``enum`` (to choose an ``anyOf``
    branch and to accept a prompt's value)."""
    types = schema.get("type")
    allowed = types if isinstance(types, list) else [types] if types else []
    checks = {
        "null": value is None,
        "string": isinstance(value, str),
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "number": isinstance(value, int | float) and not isinstance(value, bool),
        "boolean": isinstance(value, bool),
        "array": isinstance(value, list),
        "object": isinstance(value, dict),
    }
    if "enum" in schema:
        return value in schema["enum"]
    return any(checks.get(t, False) for t in allowed) if allowed else value is not None


class _SchemaAnswer:
    """One JSON instance of a schema for one chat (see :func:`schema_reply`)."""

    def __init__(self, chat: Chat, schema: JsonSchema, seed: int | None, labels: str) -> None:
        self.root = schema
        prompt = "\n".join(m["content"] for m in chat if m["role"] != "assistant")
        objs, text = _json_objects(prompt)
        self.text = text  # the prompt's wording, without the JSON it shows
        self.stem = f"{seed}\x00{prompt}".encode()
        self.culture = _culture(text)
        self.change_names = bool(_CHANGE_NAMES.search(text)) and not re.search(r"\bkeep the names\b", text)
        self.adapt_keys = self._asked_to_adapt(text)
        #: a new name is never a word of the chat: the source names and the rejected names are there
        self.banned = {w.lower() for m in chat for w in _WORD.findall(m["content"])}
        self.used: set[str] = set()
        self.renames: list[tuple[str, str]] = []
        self.persons = 0
        root = self._resolve(schema)
        props = root.get("properties", {})
        best = max(objs, key=lambda o: (len(props.keys() & o.keys()), len(json.dumps(o))), default=None)
        if best is not None and props.keys() & best.keys():
            self.hint: Any = best
        else:  # the label lines a free-text answer would give ("Quality: good")
            found = _labels(labels)
            self.hint = {
                k: found[_key(str(n))]
                for k, sub in props.items()
                for n in (k, self._resolve(sub).get("title", k))
                if _key(str(n)) in found
            }

    def build(self) -> Any:
        out = self._value(self.root, self.hint, "", {})
        return self._renamed(out) if self.renames else out

    # ----------------------------------------------------------------------------------- helpers

    def _n(self, label: str) -> int:
        """A deterministic number for one decision (a function of the prompt, the seed and ``label``)."""
        return int.from_bytes(hashlib.sha256(self.stem + label.encode()).digest()[:8], "big")

    def _resolve(self, schema: JsonSchema) -> JsonSchema:
        while "$ref" in schema or ("allOf" in schema and len(schema["allOf"]) == 1):
            if "$ref" in schema:
                target: Any = self.root
                for part in str(schema["$ref"]).removeprefix("#/").split("/"):
                    target = target[part] if part else target
                schema = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
            else:
                schema = {**schema["allOf"][0], **{k: v for k, v in schema.items() if k != "allOf"}}
        return schema

    @staticmethod
    def _asked_to_adapt(text: str) -> set[str]:
        """Words of the prompt's clauses that ask to adapt/update/rewrite/change something (not to keep it)."""
        words: set[str] = set()
        for clause in re.split(r"[.;:?!\n]+", text):
            if _ADAPT_VERB.search(clause) and not re.search(r"\bkeep\b", clause, re.I):
                words |= set(re.findall(r"[a-z_]+", clause.lower()))
        return words

    def _renamed(self, value: Any) -> Any:
        """``value`` with every replaced name swapped for the new one (full names first)."""
        if isinstance(value, dict):
            return {k: self._renamed(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._renamed(v) for v in value]
        if isinstance(value, str):
            for old, new in self.renames:
                value = re.sub(
                    rf"(?<![\w]){re.escape(old)}(?![\w])", new.replace("\\", "\\\\"), value, flags=re.I
                )
        return value

    # ----------------------------------------------------------------------------------- the walk

    def _value(self, schema: JsonSchema, hint: Any, key: str, ctx: dict[str, Any]) -> Any:
        schema = self._resolve(schema)
        if "const" in schema:
            return schema["const"]
        if "enum" in schema:
            return self._enum(list(schema["enum"]), hint, key)
        branches = [self._resolve(b) for b in schema.get("anyOf", schema.get("oneOf", []))]
        if branches:
            fit = [b for b in branches if hint is not _MISSING and _fits(b, hint)]
            real = [b for b in branches if b.get("type") != "null"] or branches
            return self._value((fit or real)[0], hint, key, ctx)
        types = schema.get("type")
        if isinstance(types, list):  # ["string", "null"]: the hint's type if allowed, else the first non-null
            allowed = [t for t in types if hint is not _MISSING and _fits({"type": t}, hint)]
            types = (allowed or [t for t in types if t != "null"] or ["null"])[0]
        if types == "object" or (types is None and "properties" in schema):
            return self._object(schema, hint if isinstance(hint, dict) else {})
        if types == "array":
            return self._array(schema, hint if isinstance(hint, list) else [], key, ctx)
        if types in ("integer", "number"):
            return self._number(schema, hint, key, ctx, integer=types == "integer")
        if types == "boolean":
            return hint if isinstance(hint, bool) else self._n(f"bool:{key}") % 2 == 0
        if types == "null":
            return None
        return self._string(schema, hint, key, ctx)

    def _enum(self, members: list[Any], hint: Any, key: str) -> Any:
        if hint in members:
            return hint
        if isinstance(hint, str):
            low = {str(m).lower(): m for m in members}
            if hint.strip().lower() in low:
                return low[hint.strip().lower()]
        real = [m for m in members if m not in ("", None)] or members
        return real[self._n(f"enum:{key}") % len(real)]

    def _object(self, schema: JsonSchema, hint: dict[str, Any]) -> dict[str, Any]:
        props: dict[str, Any] = dict(schema.get("properties", {}))
        ctx: dict[str, Any] = {}
        if "first_name" in props or "last_name" in props:
            ctx = self._person(hint)
        out: dict[str, Any] = {}
        # in order: a later field may use an earlier one ("works as a <occupation>")
        for k, sub in props.items():
            if k in ("first_name", "last_name") and k in ctx:
                out[k] = ctx[k]
            else:
                out[k] = self._value(sub, hint.get(k, _MISSING), k, {**ctx, **out})
        return out

    def _array(self, schema: JsonSchema, hint: list[Any], key: str, ctx: dict[str, Any]) -> list[Any]:
        lo = int(schema.get("minItems", 0))
        hi = int(schema.get("maxItems", max(lo, len(hint), 1)))
        n = min(max(len(hint) or 1, lo), hi)
        items = schema.get("items", {})
        return [
            self._value(items, hint[i] if i < len(hint) else _MISSING, key.removesuffix("s"), ctx)
            for i in range(n)
        ]

    def _number(self, schema: JsonSchema, hint: Any, key: str, ctx: dict[str, Any], *, integer: bool) -> Any:
        lo, hi = schema.get("minimum"), schema.get("maximum")
        xlo, xhi = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")

        def inside(v: float) -> bool:
            below = (hi is None or v <= hi) and (xhi is None or v < xhi)
            return below and (lo is None or v >= lo) and (xlo is None or v > xlo)

        if _fits({"type": "integer" if integer else "number"}, hint) and inside(hint):
            return hint
        low = lo if lo is not None else xlo if xlo is not None else 22 if key == "age" else 0
        high = hi if hi is not None else xhi if xhi is not None else 70 if key == "age" else low + 100
        n = self._n(f"num:{key}:{ctx.get('first_name', '')}")
        if not integer:  # strictly inside, so exclusive bounds hold too
            return low + (high - low) * (n % 999 + 1) / 1000
        a = math.ceil(low) if lo is not None or xlo is None else math.floor(low) + 1
        b = math.floor(high) if hi is not None or xhi is None else math.ceil(high) - 1
        return a + n % (b - a + 1) if b >= a else a

    def _string(self, schema: JsonSchema, hint: Any, key: str, ctx: dict[str, Any]) -> str:
        if isinstance(hint, str) and hint.strip():
            value = hint
            asked = key in self.adapt_keys or f"{key}s" in self.adapt_keys
            if asked and self.culture and self.culture.lower() not in value.lower():
                value = _mention(value, self.culture)
        else:
            value = self._made_up(key, ctx)
        lo, hi = int(schema.get("minLength", 0)), schema.get("maxLength")
        value = value + "." * max(0, lo - len(value))
        return value[: int(hi)] if hi is not None else value

    def _made_up(self, key: str, ctx: dict[str, Any]) -> str:
        """A plausible value for a string field the prompt's JSON does not fill."""
        where = self.culture or "their town"
        who = f"{ctx.get('first_name', '')} {ctx.get('last_name', '')}".strip()
        first = ctx.get("first_name") or "The other person"
        i = self.persons + self._n(f"str:{key}")
        female = ctx.get("_female")
        match key:
            case "setting":
                return f"A conversation at a {_PLACES[i % len(_PLACES)]} in {where}."
            case "occupation":
                return _OCCUPATIONS[(self._n("occupation") + ctx.get("_index", 0)) % len(_OCCUPATIONS)]
            case "background":
                job = ctx.get("occupation") or "a job"
                return f"{who or first} works as a {job} in {where} and is well known in the neighbourhood."
            case "personality":
                return _PERSONALITIES[i % len(_PERSONALITIES)]
            case "secret":
                return f"{first} {_SECRETS[i % len(_SECRETS)]}."
            case "goal":
                return f"Persuade the other person to {_GOALS[i % len(_GOALS)]}."
            case "gender":
                return "Nonbinary" if female is None else "Woman" if female else "Man"
            case "pronoun":
                return "they/them" if female is None else "she/her" if female else "he/him"
            case "name" | "full_name":
                return who or first
        words = key.replace("_", " ").strip() or "answer"
        return f"{words.capitalize()} of {who}" if who else f"{words.capitalize()} in {where}"

    def _gender(self, hint: dict[str, Any], index: int) -> bool | None:
        """Whether person ``index`` (0-based) is a woman (``None``: not said), from the JSON or the wording."""
        said = str(hint.get("gender", "")) + " " + str(hint.get("pronoun", ""))
        if not said.strip():
            m = re.search(
                rf"\bperson\s*{index + 1}\b(?:(?!\bperson\s*\d).){{0,80}}?\b(woman|female|girl|man|male|boy)\b",
                self.text,
                re.I | re.S,
            )
            said = m.group(1) if m else ("Woman" if self._n(f"gender{index}") % 2 else "Man")
        low = said.lower()
        if re.search(r"\b(woman|female|girl|she)\b", low):
            return True
        if re.search(r"\b(man|male|boy|he)\b", low):
            return False
        return None

    def _person(self, hint: dict[str, Any]) -> dict[str, Any]:
        """The names of the next person object: the prompt's (kept unless it asks for new names) or new ones."""
        index = self.persons
        self.persons += 1
        female = self._gender(hint, index)
        old = (str(hint.get("first_name") or "").strip(), str(hint.get("last_name") or "").strip())
        if all(old) and not self.change_names:
            self.used |= {w.lower() for w in _WORD.findall(" ".join(old))}
            return {"first_name": old[0], "last_name": old[1], "_female": female, "_index": index}
        first, last = self._new_name(female, index)
        if any(old):
            full_old = " ".join(p for p in old if p)
            self.renames.append((full_old, f"{first} {last}"))
            for part, new in zip(old, (first, last), strict=True):
                if part:
                    self.renames.append((part, new))
                    self.renames += [(w, new) for w in _WORD.findall(part) if len(w) >= 3 and w != part]
        return {"first_name": first, "last_name": last, "_female": female, "_index": index}

    def _new_name(self, female: bool | None, index: int) -> tuple[str, str]:
        """A first and last name of the prompt's culture, unused so far and not a word of the chat."""
        women, men, lasts = _NAME_POOLS.get(self.culture, _NAME_POOLS[""])
        firsts = women if female else men if female is False else (*women, *men)
        a, b = self._n(f"first{index}"), self._n(f"last{index}")

        def free(name: str) -> bool:
            return not {w.lower() for w in _WORD.findall(name)} & (self.banned | self.used)

        first = next((f for k in range(len(firsts)) if free(f := firsts[(a + k) % len(firsts)])), None)
        last = next((s for k in range(len(lasts)) if free(s := lasts[(b + k) % len(lasts)])), None)
        if first is None or last is None:  # every pooled name is taken: fall back to the default pool
            pool = _NAME_POOLS[""]
            letter = "abcdefghijklmnopqrstuvwxyz"[index % 26]
            first = first or next((f for f in (*pool[0], *pool[1]) if free(f)), f"Ari{letter}a")
            last = last or next((s for s in pool[2] if free(s)), f"Val{letter}en")
        self.used |= {w.lower() for w in _WORD.findall(f"{first} {last}")}
        return first, last


def schema_reply(chat: Chat, schema: JsonSchema, seed: int | None = None, *, labels: str = "") -> str:
    """A JSON instance of ``schema`` answering ``chat``, as a structured-output server would.

    The schema is walked (``properties``, ``$defs``/``$ref``, ``anyOf``, ``enum``, types, item and length
    bounds; every property is filled). Values come from the JSON object in the prompt with the most matching
    keys (so an adapted scenario keeps the scenario's fields and names), else from ``labels`` (a free-text
    answer's ``Label: value`` lines, matched to property names or titles), else they are synthesised from the
    prompt and the seed. Names: kept from the prompt's JSON unless the prompt asks for new ones; new ones are
    plausible names of the country the prompt names, distinct, and never a word of the chat (so never a source
    name or a rejected one); replaced names are replaced in every text too. String fields the prompt asks to
    adapt ("adapt the occupations ...") get the country mentioned, so an adaptation changes more than names.
    """
    return json.dumps(_SchemaAnswer(chat, schema, seed, labels).build(), ensure_ascii=False)


# ------------------------------------------------------------------------------ a reply for every stage


def _free_text_reply(chat: Chat, seed: int | None) -> str:
    """The answer to a free-text stage prompt, recognised by its wording ("OK" or an option if unknown)."""
    text = "\n".join(m["content"] for m in chat)
    user = chat[-1]["content"]
    if "ACTION: speak" in text and "Conversation history:" in user:
        turn = int(m.group(1)) if (m := re.search(r"You are at Turn #(\d+)", user)) else 0
        if turn >= 3:
            return "ACTION: leave\nOUTPUT: Goodbye, and thank you."
        return f"ACTION: speak\nOUTPUT: Reply number {turn} with a thought (seed {seed})."
    if "Meta label:" in user:
        return (
            f"Meta label: good\nConfidence: confident\nCritic: The judgement is well founded (seed {seed})."
        )
    if "Culture alignment:" in user:
        return "Culture alignment: aligned to the culture\nConfidence: confident"
    if "Quality:" in user:
        return "Quality: good\nConfidence: very confident"
    if "INTENT:" in user:
        return f"INTENT: To keep a polite tone, as is customary in this culture (seed {seed})."
    if user.rstrip().endswith("ANSWER:"):  # the paper's question prompt (options not listed)
        return str(1 + len(text) % 2)
    nums = re.findall(r"^(\d+)\. ", user, re.M)
    return nums[0] if nums else "OK"


def stage_reply(chat: Chat, seed: int | None = None, schema: JsonSchema | None = None) -> str:
    """A valid answer to any clca stage prompt; deterministic in the prompt, the seed and the schema.

    With a JSON ``schema`` (the structured stages: scenario names, adaptation, norm-based scenarios, the
    judge) the answer is :func:`schema_reply`'s, whose fields the free-text answer's label lines fill where
    they match (a judge asked for JSON answers what it answers in lines); without one, the free-text stages
    (role-play, judge, intents, survey answers) are recognised by their wording.
    """
    if schema is not None:
        return schema_reply(chat, schema, seed, labels=_free_text_reply(chat, seed))
    return _free_text_reply(chat, seed)


#: seconds a ``scripted:auto`` backend waits per generate call (a test hook: lets a test kill a stage mid-way)
DELAY_ENV = "CLCA_SCRIPTED_DELAY_S"


def load_scripted(name: str) -> ScriptedBackend:
    """The backend of a ``scripted:<name>`` spec (only ``auto``: :func:`stage_reply`)."""
    be = ScriptedBackend(stage_reply, spec=f"scripted:{name}")
    be.delay_s = float(os.environ.get(DELAY_ENV) or 0.0)
    return be


__all__ = ["ScriptedBackend", "load_scripted", "schema_reply", "stage_reply"]

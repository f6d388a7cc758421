"""CLI options generated from a stage's typed config (TRL's ``TrlParser`` idea, for typer).

:func:`config_options` turns every field of a pydantic config model into a ``--kebab-case`` option of a
typer command, with the model's default, its description as help, and its type (``Literal`` fields become
choices, ``list[str]`` a comma-separated value, mappings YAML). The command receives the validated model as
its ``cfg`` argument. So a stage's CLI command and its section in a run config cannot disagree, and every
setting a config offers is reachable from the command line. A value the model rejects (out of range, not a
choice) is a one-line error naming the option.
"""

from __future__ import annotations

import functools
import inspect
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar, get_args, get_origin

import typer
from pydantic import BaseModel, ValidationError

from clca.errors import ClcaError

F = TypeVar("F", bound=Callable[..., Any])


def option_name(field: str) -> str:
    return "--" + field.replace("_", "-")


def _cli_type(annotation: Any) -> tuple[Any, bool]:
    """The type typer parses for a field annotation, and whether the value is free text to be parsed by the
    model (lists, mappings, unions of models)."""
    origin = get_origin(annotation)
    args = [a for a in get_args(annotation) if a is not type(None)]
    if origin in (typing.Union, types.UnionType):
        if len(args) == 1:
            inner, raw = _cli_type(args[0])
            return inner | None, raw
        return str | None, True
    if origin is typing.Literal or annotation in (bool, int, float, str, Path):
        return annotation, False
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return str, True
    return str, True  # list[...], dict[...], frozenset[...]: text parsed by the model


def _parse_text(annotation: Any, text: str) -> Any:
    """A free-text CLI value for a list or mapping field: comma-separated, or YAML for mappings."""
    origin = get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        annotation = args[0] if len(args) == 1 else annotation
        origin = get_origin(annotation)
    if origin in (list, tuple, set, frozenset):
        return [t.strip() for t in text.split(",") if t.strip()]
    if origin is dict:
        import yaml

        return yaml.safe_load(text) if text.strip() else {}
    return text


def _option_decls(name: str, cli_t: Any) -> tuple[str, ...]:
    """``--x/--no-x`` for a boolean (a ``no_*`` field is the plain flag ``--no-x``), else ``--x``."""
    base = cli_t
    if get_origin(base) in (typing.Union, types.UnionType):
        base = next((a for a in get_args(base) if a is not type(None)), base)
    if base is bool and not name.startswith("no_"):
        return (f"{option_name(name)}/--no-{name.replace('_', '-')}",)
    return (option_name(name),)


def config_options(
    model: type[BaseModel],
    *,
    exclude: tuple[str, ...] = (),
    include: tuple[str, ...] | None = None,
    defaults: dict[str, Any] | None = None,
    all_optional: bool = False,
    param: str = "cfg",
    help_extra: Callable[[str], str] | None = None,
) -> Callable[[F], F]:
    """Decorate a typer command so that ``model``'s fields become its options and it gets ``cfg=model(...)``.

    ``include``: only these fields (default: all but ``exclude``); ``defaults``: the command's own defaults for
    some fields (e.g. ``--model``'s role). Booleans are ``--x/--no-x`` pairs. Every option shows the field's
    description and its default. ``all_optional``: every option defaults to ``None`` and the command gets the
    dict of the options given (for overrides on top of a preset) instead of a model; ``help_extra(field)``
    then adds what the default is (e.g. per preset).
    """
    own_defaults = dict(defaults or {})

    def deco(fn: F) -> F:
        sig = inspect.signature(fn)
        hints = typing.get_type_hints(fn, include_extras=True)  # resolve `from __future__` string annotations
        own = [
            p.replace(annotation=hints.get(p.name, p.annotation))
            for p in sig.parameters.values()
            if p.name != param
        ]
        taken = {p.name for p in own}
        fields = {
            n: f
            for n, f in model.model_fields.items()
            if n not in exclude and n not in taken and (include is None or n in include)
        }
        extra: list[inspect.Parameter] = []
        raw_fields: set[str] = set()
        field_defaults: dict[str, Any] = {}
        for name, f in fields.items():
            cli_t, raw = _cli_type(f.annotation)
            if raw:
                raw_fields.add(name)
            field_defaults[name] = own_defaults.get(name, f.get_default(call_default_factory=True))
            default = None if all_optional else field_defaults[name]
            if raw and default is not None:
                default = _show_default(default)
            if all_optional and get_origin(cli_t) not in (typing.Union, types.UnionType):
                cli_t = cli_t | None
            if get_origin(cli_t) is typing.Literal and default is not None and default not in get_args(cli_t):
                cli_t = str
            help_text = f.description or name.replace("_", " ").capitalize() + "."
            if all_optional and help_extra is not None:
                help_text = f"{help_text} {help_extra(name)}".strip()
            extra.append(
                inspect.Parameter(
                    name,
                    inspect.Parameter.KEYWORD_ONLY,
                    default=default,
                    annotation=Annotated[cli_t, typer.Option(*_option_decls(name, cli_t), help=help_text)],
                )
            )

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            values = {n: kwargs.pop(n) for n in list(kwargs) if n in fields}
            kwargs[param] = validate_options(model, values, raw_fields, all_optional)
            return fn(*args, **kwargs)

        wrapper.__signature__ = sig.replace(parameters=[*own, *extra])  # type: ignore[attr-defined]
        #: what this decorator (and the ones below it) generate, for tools that check documented commands
        wrapper.__clca_configs__ = [  # type: ignore[attr-defined]
            *getattr(fn, "__clca_configs__", []),
            ConfigOptions(model, param, tuple(fields), frozenset(raw_fields), field_defaults, all_optional),
        ]
        return wrapper  # type: ignore[return-value]

    return deco


class ConfigOptions(typing.NamedTuple):
    """One ``config_options`` decoration: the model, the command parameter it fills, its option fields."""

    model: type[BaseModel]
    param: str
    fields: tuple[str, ...]
    raw_fields: frozenset[str]
    defaults: dict[str, Any]
    all_optional: bool


def validate_options(
    model: type[BaseModel],
    values: dict[str, Any],
    raw_fields: set[str] | frozenset[str],
    all_optional: bool,
) -> Any:
    """The parsed option values as the command receives them: a validated model (options left at their default
    are not "set", so model validators see what the user chose), or with ``all_optional`` the dict of the
    options given; a one-line error naming the option otherwise."""
    values = dict(values)
    for n in raw_fields:
        if isinstance(values.get(n), str):
            values[n] = _parse_text(model.model_fields[n].annotation, values[n])
    if all_optional:
        given = {k: v for k, v in values.items() if v is not None}
        try:
            model.model_validate(given)
        except ValidationError as exc:
            raise option_error(exc) from None
        return given
    chosen = {
        n: v for n, v in values.items() if v != model.model_fields[n].get_default(call_default_factory=True)
    }
    try:
        return model.model_validate(chosen)
    except ValidationError as exc:
        raise option_error(exc) from None


def _show_default(value: Any) -> str:
    if isinstance(value, (list, tuple, set, frozenset)):
        return ",".join(str(v) for v in (sorted(value) if isinstance(value, (set, frozenset)) else value))
    if isinstance(value, BaseModel):  # a model may name itself (a named filter rule), else its JSON
        named = getattr(value, "cli_value", None)
        return str(named()) if callable(named) else value.model_dump_json()
    if isinstance(value, dict):
        import json

        return json.dumps(value)
    return str(value)


def option_error(exc: ValidationError) -> ClcaError:
    """A one-line error naming the CLI option behind the first validation problem."""
    err = exc.errors()[0]
    loc = [str(p) for p in err.get("loc", ())]
    opt = option_name(loc[0]) if loc else "an option"
    msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
    return ClcaError(f"{opt}: {msg}.", fix=f"correct {opt} (see --help for its range and choices).")

"""Reading config.yaml: YAML with line numbers, ${ENV} expansion, every error at once.

The typed models live in :mod:`bot.settings`; this module turns a file into either a
:class:`~bot.settings.Settings` or a :class:`~bot.errors.ConfigError` listing every problem
with its path and line, e.g. ``config.yaml:41 sla.policies[2].first_response: expected a
duration like "30m"``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from bot.errors import ConfigError, ConfigProblem

Loc = tuple[str | int, ...]

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-(.*?))?\}")


def format_path(loc: Loc) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


@dataclass
class LoadedYaml:
    """Plain data plus where each path came from."""

    data: Any
    source: str
    lines: dict[Loc, int] = field(default_factory=dict)
    #: env variables referenced but not set (and with no default), by path
    missing_env: dict[Loc, list[str]] = field(default_factory=dict)

    def line_of(self, loc: Loc) -> int | None:
        """Line of ``loc``, or of its nearest parent that exists in the file."""
        probe = tuple(loc)
        while probe:
            if probe in self.lines:
                return self.lines[probe]
            probe = probe[:-1]
        return self.lines.get((), None)

    def problem(self, loc: Loc, message: str) -> ConfigProblem:
        return ConfigProblem(
            path=format_path(loc), message=message, source=self.source, line=self.line_of(loc)
        )


def _walk(node: yaml.Node, loc: Loc, lines: dict[Loc, int]) -> Any:
    lines[loc] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            k = str(_scalar(key_node))
            out[k] = _walk(value_node, (*loc, k), lines)
            lines[(*loc, k)] = key_node.start_mark.line + 1  # the key's line, not the value's
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_walk(item, (*loc, i), lines) for i, item in enumerate(node.value)]
    return _scalar(node)


def _scalar(node: yaml.Node) -> Any:
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node, deep=True)
    finally:
        loader.dispose()


def expand_env(value: Any, loc: Loc, env: Mapping[str, str], missing: dict[Loc, list[str]]) -> Any:
    """Expand ``${VAR}`` and ``${VAR:-default}`` in every string, recording unset variables."""
    if isinstance(value, dict):
        return {k: expand_env(v, (*loc, k), env, missing) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_env(v, (*loc, i), env, missing) for i, v in enumerate(value)]
    if isinstance(value, str) and "${" in value:

        def sub(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            if env.get(name):  # like the shell's ${VAR:-x}: an empty variable counts as unset
                return env[name]
            if default is not None:
                return default
            missing.setdefault(loc, []).append(name)
            return ""

        expanded = _ENV.sub(sub, value)
        if expanded != value and _ENV.fullmatch(value.strip()) and value.strip() == value:
            # a whole-value reference keeps YAML scalar typing ("true", "5", "") for non-secrets
            return _retype(expanded)
        return expanded
    return value


def _retype(text: str) -> Any:
    if text == "":
        return ""
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    return loaded if isinstance(loaded, bool | int | float) else text


def read_yaml(path: Path, env: Mapping[str, str] | None = None) -> LoadedYaml:
    source = path.name
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([ConfigProblem("", f"file not found: {path}", source=str(path))]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([ConfigProblem("", f"cannot read {path}: {exc}", source=str(path))]) from None
    return parse_yaml(text, source, env)


def parse_yaml(text: str, source: str, env: Mapping[str, str] | None = None) -> LoadedYaml:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark is not None else None
        raise ConfigError(
            [ConfigProblem("", f"invalid YAML: {exc.problem or exc}", source=source, line=line)]
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError([ConfigProblem("", f"invalid YAML: {exc}", source=source)]) from None
    lines: dict[Loc, int] = {}
    data = {} if node is None else _walk(node, (), lines)
    loaded = LoadedYaml(data=data, source=source, lines=lines)
    loaded.data = expand_env(data, (), os.environ if env is None else env, loaded.missing_env)
    return loaded


def problems_from_validation(
    loaded: LoadedYaml, exc: ValidationError, prefix: Loc = ()
) -> list[ConfigProblem]:
    out: list[ConfigProblem] = []
    for err in exc.errors(include_url=False):
        loc: Loc = (*prefix, *(p for p in err["loc"] if not _is_union_tag(p)))
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling; see config.yaml for the keys this section accepts)"
        elif err["type"] == "missing":
            msg = "required key is missing"
        elif msg.startswith("Value error, "):
            msg = msg.removeprefix("Value error, ")
        out.append(loaded.problem(loc, msg))
    return out


def _is_union_tag(part: Any) -> bool:
    # pydantic inserts the union member's name ("function-after[...]", "str") in loc: drop it
    return isinstance(part, str) and ("[" in part or part in {"str", "int", "float", "bool"})


def missing_env_problems(loaded: LoadedYaml, under: Loc = ()) -> list[ConfigProblem]:
    out = []
    for loc, names in sorted(loaded.missing_env.items(), key=lambda kv: loaded.line_of(kv[0]) or 0):
        if loc[: len(under)] != under:
            continue
        for name in names:
            out.append(
                loaded.problem(loc, f"environment variable {name} is not set (referenced as ${{{name}}})")
            )
    return out

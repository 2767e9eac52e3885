"""Typed environment variables: the one way the project reads its configuration.

Each function reads one variable and returns it typed, or the default when it is unset or
blank (surrounding whitespace never counts). A value that cannot be read as the type asked
for raises :class:`EnvError`, whose message names the variable and the value, so that a
misspelt setting stops the process at start-up instead of failing a request later.

Only the standard library is used: `engine/` (which knows nothing of Django) reads its
settings here too. Ranges and cross-field rules are checked by the Django system checks
(`core/checks.py`), which see the values whatever set them.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable
from pathlib import Path

__all__ = [
    "FALSE_WORDS",
    "TRUE_WORDS",
    "EnvError",
    "env_bool",
    "env_choice",
    "env_count",
    "env_float",
    "env_int",
    "env_list",
    "env_path",
    "env_rate",
    "env_raw",
    "env_str",
    "parse_number_map",
    "parse_rate",
]

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})
#: A request rate as Django REST framework writes one: "600/min", "10/s", "5000/day".
_RATE = re.compile(r"[1-9]\d*/(s|sec|second|m|min|minute|h|hour|d|day)")


class EnvError(ValueError):
    """An environment variable holds a value its setting cannot take."""

    def __init__(self, name: str, value: str, expected: str) -> None:
        self.name, self.value, self.expected = name, value, expected
        super().__init__(f"{name} must be {expected}, not {value!r}")


def env_raw(name: str) -> str | None:
    """The variable stripped of surrounding whitespace; None when unset or blank."""
    value = os.environ.get(name, "").strip()
    return value or None


def env_str(name: str, default: str = "", *, empty_is_set: bool = False) -> str:
    """The value, stripped; `default` when unset, and when blank unless `empty_is_set`
    (then a variable set to nothing means the empty string, e.g. "no fallback")."""
    if empty_is_set and name in os.environ:
        return os.environ[name].strip()
    raw = env_raw(name)
    return default if raw is None else raw


def env_int(name: str, default: int) -> int:
    raw = env_raw(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise EnvError(name, raw, "an integer") from None


def env_float(name: str, default: float) -> float:
    raw = env_raw(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise EnvError(name, raw, "a number") from None
    if not math.isfinite(value):
        raise EnvError(name, raw, "a finite number")
    return value


def env_optional_float(name: str) -> float | None:
    """A number, or None when unset or blank (the caller's own default applies)."""
    return None if env_raw(name) is None else env_float(name, 0.0)


def env_count(name: str, default: int | None) -> int | None:
    """An integer limit, or None for "off" (no limit); `default` when unset or blank."""
    raw = env_raw(name)
    if raw is None:
        return default
    if raw.lower() == "off":
        return None
    return env_int(name, 0)  # set: the default is not used


def env_bool(name: str, default: bool = False) -> bool:
    """1/true/yes/on or 0/false/no/off, in any case."""
    raw = env_raw(name)
    if raw is None:
        return default
    word = raw.lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise EnvError(name, raw, "one of 1, true, yes, on, 0, false, no, off")


def env_choice(name: str, default: str, choices: Iterable[str]) -> str:
    """One of `choices`, compared in lower case (the choices are given in lower case)."""
    allowed = tuple(choices)
    raw = env_raw(name)
    if raw is None:
        return default
    if raw.lower() not in allowed:
        raise EnvError(name, raw, "one of " + ", ".join(allowed))
    return raw.lower()


def env_list(name: str, default: str = "") -> list[str]:
    """A comma-separated list; blank items are dropped."""
    raw = env_raw(name)
    return [item.strip() for item in (raw or default).split(",") if item.strip()]


def env_path(name: str, default: str | Path | None = None) -> Path | None:
    """A path, `~` expanded; `default` (None: no path) when unset."""
    raw = env_raw(name)
    if raw is None:
        return None if default is None else Path(default).expanduser()
    return Path(raw).expanduser()


def env_rate(name: str, default: str) -> str | None:
    """A request rate ("600/min"), or None for "off"."""
    return parse_rate(env_str(name, default), name)


def parse_rate(value: str, name: str) -> str | None:
    """`value` as a request rate ("600/min"), None for "off"; EnvError naming `name` when it
    is neither."""
    if value.strip().lower() == "off":
        return None
    if not _RATE.fullmatch(value.strip()):
        raise EnvError(name, value, "a rate like '600/min' (per s, min, hour or day), or 'off'")
    return value.strip()


def parse_number_map(value: str, name: str) -> dict[str, float]:
    """Pairs like "a=0.8,b=0.3" as {"a": 0.8, "b": 0.3}; blank items are ignored.
    EnvError naming `name` and the first bad item otherwise."""
    numbers: dict[str, float] = {}
    for item in filter(str.strip, value.split(",")):
        key, equals, number = (part.strip() for part in item.partition("="))
        try:
            parsed = float(number)
        except ValueError:
            parsed = math.nan
        if not key or not equals or not math.isfinite(parsed):
            raise EnvError(name, item.strip(), "name=number pairs separated by commas")
        numbers[key] = parsed
    return numbers

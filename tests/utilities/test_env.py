"""The typed environment parsers (utilities/env.py): a value is read as its type or refused
with a message naming the variable and the value; unset or blank means the default."""

from __future__ import annotations

from pathlib import Path

import pytest

from utilities.env import (
    EnvError,
    env_bool,
    env_choice,
    env_count,
    env_float,
    env_int,
    env_list,
    env_path,
    env_rate,
    env_str,
    parse_number_map,
)

NAME = "VOICEPRINT_TEST_VARIABLE"


@pytest.fixture
def env(monkeypatch):
    def set_value(value: str | None) -> None:
        if value is None:
            monkeypatch.delenv(NAME, raising=False)
        else:
            monkeypatch.setenv(NAME, value)

    return set_value


@pytest.mark.parametrize("value", [None, "", "   "])
def test_unset_or_blank_is_the_default(env, value):
    env(value)
    assert env_str(NAME, "d") == "d"
    assert env_int(NAME, 7) == 7
    assert env_float(NAME, 2.5) == 2.5
    assert env_bool(NAME, True) is True
    assert env_list(NAME, "a,b") == ["a", "b"]
    assert env_path(NAME, "/x") == Path("/x")
    assert env_choice(NAME, "json", ("json", "plain")) == "json"
    assert env_rate(NAME, "600/min") == "600/min"
    assert env_count(NAME, 60) == 60


def test_values_are_read_as_their_type_without_surrounding_blanks(env):
    env(" 42 ")
    assert env_int(NAME, 0) == 42
    assert env_float(NAME, 0.0) == 42.0
    assert env_str(NAME) == "42"
    env(" a , ,b ")
    assert env_list(NAME) == ["a", "b"]
    env("~/models")
    assert env_path(NAME) == Path.home() / "models"
    env(" PLAIN ")
    assert env_choice(NAME, "json", ("json", "plain")) == "plain"


def test_a_variable_set_to_nothing_can_mean_nothing(env):
    env("")
    assert env_str(NAME, "ge2e", empty_is_set=True) == ""
    env(None)
    assert env_str(NAME, "ge2e", empty_is_set=True) == "ge2e"


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1", True), ("Yes", True), ("ON", True), ("0", False), ("false", False), ("off", False)],
)
def test_booleans(env, value, expected):
    env(value)
    assert env_bool(NAME) is expected


@pytest.mark.parametrize(
    ("read", "value"),
    [
        (lambda: env_int(NAME, 1), "two"),
        (lambda: env_int(NAME, 1), "1.5"),
        (lambda: env_float(NAME, 1.0), "fast"),
        (lambda: env_float(NAME, 1.0), "nan"),
        (lambda: env_float(NAME, 1.0), "inf"),
        (lambda: env_bool(NAME), "maybe"),
        (lambda: env_choice(NAME, "json", ("json", "plain")), "xml"),
        (lambda: env_rate(NAME, "600/min"), "600"),
        (lambda: env_count(NAME, 60), "sixty"),
        (lambda: env_rate(NAME, "600/min"), "0/min"),
        (lambda: env_rate(NAME, "600/min"), "600/fortnight"),
    ],
)
def test_a_malformed_value_names_the_variable_and_the_value(env, read, value):
    env(value)
    with pytest.raises(EnvError) as raised:
        read()
    assert NAME in str(raised.value) and repr(value) in str(raised.value)
    assert isinstance(raised.value, ValueError)


@pytest.mark.parametrize("value", ["off", " OFF "])
def test_a_rate_can_be_off(env, value):
    env(value)
    assert env_rate(NAME, "600/min") is None


@pytest.mark.parametrize(("value", "expected"), [("off", None), (" Off ", None), ("25", 25)])
def test_a_count_is_a_number_or_off(env, value, expected):
    env(value)
    assert env_count(NAME, 60) == expected


def test_number_maps():
    assert parse_number_map("", NAME) == {}
    assert parse_number_map(" ge2e = 0.8 , eres2net=0.3,", NAME) == {"ge2e": 0.8, "eres2net": 0.3}


@pytest.mark.parametrize(
    ("value", "bad_item"),
    [("ge2e", "ge2e"), ("ge2e=abc", "ge2e=abc"), ("=0.5", "=0.5"), ("ge2e=", "ge2e="),
     ("ge2e=nan", "ge2e=nan"), ("a=1, b", "b")],
)  # fmt: skip
def test_a_malformed_number_map_names_the_bad_item(value, bad_item):
    with pytest.raises(EnvError) as raised:
        parse_number_map(value, NAME)
    assert NAME in str(raised.value) and repr(bad_item) in str(raised.value)


@pytest.mark.parametrize("value", ["", "  "])
def test_an_unset_count_takes_its_default_even_off(env, value):
    """VOICEPRINT_AUDIO_RETENTION_DAYS: unset or blank means its default, None ("off")."""
    env(value)
    assert env_count(NAME, None) is None
    assert env_count(NAME, 60) == 60

"""Settings checked at start-up (core/checks.py): every setting that can be malformed is
reported by a system check naming it, and `make run` (python -m config.serve) stops on it
with that message before it starts anything, instead of failing requests later."""

from __future__ import annotations

import base64
import os
import stat
import subprocess
import sys

import pytest
from django.core.checks import run_checks

from core.checks import OPTIONAL_POSITIVE_SETTINGS, POSITIVE_SETTINGS
from tests.config.service import free_port, postmaster_pid
from tests.conftest import PROJECT_ROOT
from utilities.sealing import new_key


def reported() -> dict[str, str]:
    """Our checks' messages, by id (one per line), as Django's check framework runs them."""
    messages: dict[str, list[str]] = {}
    for message in run_checks():
        if (message.id or "").startswith("voiceprint."):
            messages.setdefault(message.id, []).append(message.msg)
    return {check_id: "\n".join(texts) for check_id, texts in messages.items()}


def test_the_settings_the_suite_runs_with_pass():
    assert reported() == {}


@pytest.mark.parametrize(
    "value", ["ge2e=abc", "ge2e", "=0.8", "ge2e=0.8,eres2net", "ge2e=1.5", "ge2e=-0.1", "foo=0.5"]
)
def test_a_malformed_threshold_override_is_reported(settings, value):
    settings.VOICEPRINT_DEFAULT_THRESHOLDS = value

    messages = reported()

    assert list(messages) == ["voiceprint.E001"]
    assert all(line.startswith("VOICEPRINT_DEFAULT_THRESHOLDS")
               for line in messages["voiceprint.E001"].splitlines())  # fmt: skip


@pytest.mark.parametrize(
    "value", ["", "ge2e=0.8", " ge2e = 0.8 , eres2net=0.3,campplus=0.3 ,", "eres2netv2=0.4"]
)
def test_well_formed_threshold_overrides_pass(settings, value):
    settings.VOICEPRINT_DEFAULT_THRESHOLDS = value
    assert reported() == {}


@pytest.mark.parametrize(
    ("scope", "variable", "other"),
    [
        ("tenant", "VOICEPRINT_RATE_LIMIT", "VOICEPRINT_TOKEN_RATE_LIMIT"),
        ("token", "VOICEPRINT_TOKEN_RATE_LIMIT", "VOICEPRINT_RATE_LIMIT"),
    ],
)
def test_a_malformed_rate_limit_is_reported(settings, scope, variable, other):
    rates = {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], scope: "600/fortnight"}
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}

    messages = reported()

    assert list(messages) == ["voiceprint.E002"]
    assert f"{variable} must be" in messages["voiceprint.E002"]
    assert other not in messages["voiceprint.E002"]  # only the one malformed
    assert "'600/fortnight'" in messages["voiceprint.E002"]


@pytest.mark.parametrize(
    "value", ["http://example.com", "example.com:8080", "*.example.com", "example.com/audio"]
)
def test_an_allowlist_entry_no_host_can_match_is_reported(settings, value):
    settings.VOICEPRINT_URL_ALLOWLIST = f"127.0.0.1,{value}"

    messages = reported()

    assert list(messages) == ["voiceprint.E003"]
    assert "VOICEPRINT_URL_ALLOWLIST" in messages["voiceprint.E003"]
    assert value in messages["voiceprint.E003"] and "127.0.0.1" not in messages["voiceprint.E003"]


def test_hosts_and_addresses_in_the_allowlist_pass(settings):
    settings.VOICEPRINT_URL_ALLOWLIST = "127.0.0.1, [::1],localhost,Audio.Example.COM.,"
    assert reported() == {}


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("VOICEPRINT_MIN_SPEECH_SECONDS", "abc"),
        ("VOICEPRINT_MIN_SPEECH_SECONDS", "0"),
        ("VOICEPRINT_MAX_SPEECH_SECONDS", "0.5"),  # below the minimum (1 s)
        ("VOICEPRINT_MAX_DECODED_SECONDS", "-1"),
        ("VOICEPRINT_MAX_SOURCE_SAMPLES", "1e6"),
        ("VOICEPRINT_TORCH_THREADS", "-2"),
        ("VOICEPRINT_ONNX", "maybe"),
        ("VOICEPRINT_ONNX_INT8", "half"),
        ("VOICEPRINT_ONNX_PROVIDER", "gpu"),
        ("VOICEPRINT_MODEL_DOWNLOAD", "perhaps"),
        ("VOICEPRINT_MODEL_DOWNLOAD_TIMEOUT", "0"),
    ],
)
def test_a_malformed_engine_variable_is_reported(monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)

    messages = reported()

    assert list(messages) == ["voiceprint.E004"]
    assert variable in messages["voiceprint.E004"]


@pytest.mark.parametrize("variable", ["VOICEPRINT_ENGINE", "VOICEPRINT_ENGINE_FALLBACK"])
def test_an_unknown_engine_name_is_reported(monkeypatch, variable):
    monkeypatch.setenv(variable, "eres2nte")

    messages = reported()

    assert list(messages) == ["voiceprint.E005"]
    assert variable in messages["voiceprint.E005"] and "eres2nte" in messages["voiceprint.E005"]


def test_an_empty_fallback_means_none_and_passes(monkeypatch):
    monkeypatch.setenv("VOICEPRINT_ENGINE_FALLBACK", "")
    assert reported() == {}


@pytest.mark.parametrize(
    ("name", "value"),
    [
        *((name, 0) for name in (*POSITIVE_SETTINGS, *OPTIONAL_POSITIVE_SETTINGS)),
        ("VOICEPRINT_TRUSTED_PROXIES", -1),
    ],
)
def test_a_limit_out_of_range_is_reported(settings, name, value):
    setattr(settings, name, value)

    messages = reported()

    assert list(messages) == ["voiceprint.E006"]
    assert name in messages["voiceprint.E006"]


@pytest.mark.parametrize("name", OPTIONAL_POSITIVE_SETTINGS)
def test_a_limit_that_may_be_off_passes_off(settings, name):
    setattr(settings, name, None)
    assert reported() == {}


@pytest.mark.parametrize(("name", "value"), [("LOG_FORMAT", "xml"), ("LOG_LEVEL", "LOUD")])
def test_unknown_log_settings_are_reported(settings, name, value):
    setattr(settings, name, value)

    messages = reported()

    assert list(messages) == ["voiceprint.E007"]
    assert name in messages["voiceprint.E007"]


def test_a_cache_url_that_is_not_redis_is_reported(settings):
    settings.VOICEPRINT_CACHE_URL = "memcached://127.0.0.1:11211"

    messages = reported()

    assert list(messages) == ["voiceprint.E008"]
    assert "VOICEPRINT_CACHE_URL" in messages["voiceprint.E008"]


@pytest.mark.parametrize(("size", "ok"), [("2GB", True), ("512 MB", True), ("65536", True),
                                          ("2 gigs", False), ("-1GB", False)])  # fmt: skip
def test_the_index_build_memory_must_be_a_postgresql_size(settings, size, ok):
    settings.VOICEPRINT_HNSW_BUILD_MEMORY = size

    messages = reported()

    assert list(messages) == ([] if ok else ["voiceprint.E009"])


@pytest.mark.parametrize(
    ("keys", "problem"),
    [
        (["c2hvcnQ="], "key #1 must be 32 bytes"),
        ([new_key(), "not base64!"], "key #2 is not base64"),
        ([], "holds no key"),
    ],
)
def test_a_malformed_audio_key_is_reported_without_the_key(settings, keys, problem):
    settings.VOICEPRINT_AUDIO_KEY = keys

    messages = reported()

    assert list(messages) == ["voiceprint.E020"]
    assert messages["voiceprint.E020"].startswith("VOICEPRINT_AUDIO_KEY")
    assert problem in messages["voiceprint.E020"]
    assert not any(key in messages["voiceprint.E020"] for key in keys)


# --- at start-up --------------------------------------------------------------------------------


def start(command: list[str], tmp_path, **env: str) -> subprocess.CompletedProcess:
    """`command` as an operator runs it, on a private var dir; it must stop by itself."""
    environment = {
        **{key: value for key, value in os.environ.items() if key != "DATABASE_URL"},
        "VOICEPRINT_VAR_DIR": str(tmp_path / "var"),
        "VOICEPRINT_PGDATA": str(tmp_path / "var" / "pgdata"),
        **env,
    }
    return subprocess.run(
        command, cwd=PROJECT_ROOT, env=environment, capture_output=True, text=True, timeout=120
    )


def serve(tmp_path, **env: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "config.serve", "--port", str(free_port())]
    return start(command, tmp_path, **env)


def test_make_run_stops_on_a_malformed_threshold_before_starting_anything(tmp_path):
    done = serve(tmp_path, VOICEPRINT_DEFAULT_THRESHOLDS="ge2e=abc")

    assert done.returncode != 0
    assert "voiceprint.E001" in done.stderr
    assert "VOICEPRINT_DEFAULT_THRESHOLDS must be name=number pairs" in done.stderr
    assert "'ge2e=abc'" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    # It stopped before the embedded database: no server was started, none is left behind.
    assert not (tmp_path / "var" / "pgdata").exists()
    assert postmaster_pid(tmp_path / "var" / "pgdata") is None


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("VOICEPRINT_WEB_WORKERS", "two", "VOICEPRINT_WEB_WORKERS must be an integer, not 'two'"),
        ("LOG_FORMAT", "xml", "LOG_FORMAT must be one of json, plain, not 'xml'"),
        ("VOICEPRINT_RATE_LIMIT", "fast", "VOICEPRINT_RATE_LIMIT must be a rate like '600/min'"),
        ("PORT", "eighty", "PORT must be an integer, not 'eighty'"),
    ],
)
def test_make_run_stops_on_a_value_of_the_wrong_type(tmp_path, variable, value, message):
    done = start([sys.executable, "-m", "config.serve"], tmp_path, **{variable: value})

    assert done.returncode != 0
    assert f"Configuration error: {message}" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert not (tmp_path / "var" / "pgdata").exists()


def test_management_commands_stop_on_a_value_of_the_wrong_type(tmp_path):
    done = start([sys.executable, "manage.py", "check"], tmp_path, VOICEPRINT_EMBED_TIMEOUT="soon")

    assert done.returncode != 0
    message = "Configuration error: VOICEPRINT_EMBED_TIMEOUT must be a number, not 'soon'"
    assert message in done.stderr
    assert "Traceback" not in done.stderr + done.stdout


def test_make_run_stops_on_a_malformed_audio_key(tmp_path):
    done = serve(tmp_path, VOICEPRINT_AUDIO_KEY="c2VjcmV0LWJ1dC10b28tc2hvcnQ=")

    assert done.returncode != 0
    assert "voiceprint.E020" in done.stderr and "VOICEPRINT_AUDIO_KEY" in done.stderr
    assert "c2VjcmV0LWJ1dC10b28tc2hvcnQ=" not in done.stderr + done.stdout
    assert "Traceback" not in done.stderr + done.stdout
    assert not (tmp_path / "var" / "pgdata").exists()


def test_a_fresh_install_generates_its_audio_key_under_var(tmp_path):
    """Without VOICEPRINT_AUDIO_KEY a key is made once in var/audio_key, readable by its
    owner only, and every later process uses the same one."""
    read_key = [sys.executable, "-c",
                "from django.conf import settings; import django; django.setup(); "
                "print(settings.VOICEPRINT_AUDIO_KEY[0])"]  # fmt: skip
    env = {"DJANGO_SETTINGS_MODULE": "config.settings", "VOICEPRINT_AUDIO_KEY": ""}
    first, again = (start(read_key, tmp_path, **env) for _ in range(2))

    stored = tmp_path / "var" / "audio_key"
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == again.stdout.strip() == stored.read_text().strip()
    assert len(base64.b64decode(stored.read_text())) == 32
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert [p.name for p in (tmp_path / "var").iterdir() if p.name.startswith(".audio_key")] == []

"""Django system checks of the settings: a value the service cannot run with stops
`make run` (config/serve.py runs the checks before anything starts) and `manage.py check`
with a message naming the variable, instead of failing requests later.

A value of the wrong type never gets this far: the typed parsers (`utilities.env`) refuse it
while the settings are read. What is checked here is what a parser cannot see: ranges,
syntax inside a string (thresholds, allowlist), names that must exist (engines). Each check
reads the value the code will use, whatever set it (the environment, a test's override).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error

from engine import available_engines
from engine.settings import EngineSettings, environment_problems
from utilities.env import EnvError, parse_number_map, parse_rate
from utilities.sealing import Keyring, KeyringError
from utilities.url_fetch import invalid_allowlist_entries

#: Settings that count something or bound a wait: they must be greater than 0.
POSITIVE_SETTINGS = (
    "VOICEPRINT_MAX_VOICES_PER_DEVICE",
    "VOICEPRINT_EMBED_TIMEOUT",
    "VOICEPRINT_WEB_WORKERS",
    "VOICEPRINT_WEB_THREADS",
    "VOICEPRINT_WEB_TIMEOUT",
    "VOICEPRINT_ENROLL_TARGET_SECONDS",
    "VOICEPRINT_ENROLL_MIN_SPEECH_SECONDS",
    "VOICEPRINT_AUTH_FAILURE_WINDOW",
    "VOICEPRINT_AUDIT_RETENTION_DAYS",
    "VOICEPRINT_BULK_INDEX_THRESHOLD",
    "VOICEPRINT_STREAM_MAX_SECONDS",
    "VOICEPRINT_STREAM_IDLE_TIMEOUT",
    "VOICEPRINT_STREAM_MAX_PER_TENANT",
    "VOICEPRINT_STREAM_ENDPOINT_MS",
    "VOICEPRINT_STREAM_MAX_UTTERANCE_SECONDS",
    "VOICEPRINT_STREAM_PARTIAL_MIN_SPEECH",
    "VOICEPRINT_STREAM_PARTIAL_INTERVAL_MS",
    "VOICEPRINT_STREAM_PARTIAL_WINDOW",
    "VOICEPRINT_STREAM_THREADS",
)
#: Limits that are a count greater than 0, or None ("off").
OPTIONAL_POSITIVE_SETTINGS = (
    "VOICEPRINT_AUTH_FAILURE_LIMIT",
    "VOICEPRINT_DEVICE_ENROLLMENTS_PER_HOUR",
    "VOICEPRINT_AUDIO_RETENTION_DAYS",
)
LOG_FORMATS = ("json", "plain")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
CACHE_URL_SCHEMES = ("redis://", "rediss://", "unix://")


def check_default_thresholds(app_configs=None, **kwargs: Any) -> list[CheckMessage]:
    """VOICEPRINT_DEFAULT_THRESHOLDS: engine=similarity pairs, known engines, within 0..1."""
    name = "VOICEPRINT_DEFAULT_THRESHOLDS"
    hint = "e.g. ge2e=0.80,eres2net=0.30 (a cosine similarity per engine, 0 to 1)"
    try:
        overrides = parse_number_map(settings.VOICEPRINT_DEFAULT_THRESHOLDS, name)
    except EnvError as exc:
        return [Error(str(exc), hint=hint, id="voiceprint.E001")]
    errors = []
    for engine_name, value in overrides.items():
        if engine_name not in available_engines():
            why = f"{name} names an unknown engine {engine_name!r}"
            errors.append(Error(why, hint=_known_engines(), id="voiceprint.E001"))
        elif not 0.0 <= value <= 1.0:
            why = f"{name}: the threshold of {engine_name} must be within 0 and 1, not {value}"
            errors.append(Error(why, hint=hint, id="voiceprint.E001"))
    return errors


#: The throttles' scopes (settings.REST_FRAMEWORK's rates), by the variable that sets each.
RATE_SETTINGS = {"tenant": "VOICEPRINT_RATE_LIMIT", "token": "VOICEPRINT_TOKEN_RATE_LIMIT"}


def check_rate_limit(app_configs=None, **kwargs: Any) -> list[CheckMessage]:
    """The per-tenant and per-token rates as the throttles will read them."""
    rates = settings.REST_FRAMEWORK.get("DEFAULT_THROTTLE_RATES", {})
    errors = []
    for scope, name in RATE_SETTINGS.items():
        if rates.get(scope) is None:
            continue  # "off"
        try:
            parse_rate(str(rates[scope]), name)
        except EnvError as exc:
            errors.append(Error(str(exc), id="voiceprint.E002"))
    return errors


def check_url_allowlist(app_configs=None, **kwargs: Any) -> list[CheckMessage]:
    """VOICEPRINT_URL_ALLOWLIST: host names or IP addresses, nothing a URL host can't be."""
    bad = invalid_allowlist_entries(settings.VOICEPRINT_URL_ALLOWLIST)
    if not bad:
        return []
    why = f"VOICEPRINT_URL_ALLOWLIST has entries no URL host can match: {', '.join(bad)}"
    hint = "host names or IP addresses separated by commas, without scheme, port, path or *"
    return [Error(why, hint=hint, id="voiceprint.E003")]


def check_engine_environment(app_configs=None, **kwargs: Any) -> list[CheckMessage]:
    """The engine's variables (engine/settings.py), read as the engine will read them."""
    errors = [Error(problem, id="voiceprint.E004") for problem in environment_problems()]
    if errors:
        return errors
    engine_settings = EngineSettings.from_env()
    named = {"VOICEPRINT_ENGINE": engine_settings.engine}
    if engine_settings.fallback:
        named["VOICEPRINT_ENGINE_FALLBACK"] = engine_settings.fallback
    return [
        Error(f"{variable} names an unknown engine {value!r}", hint=_known_engines(),
              id="voiceprint.E005")
        for variable, value in named.items()
        if value not in available_engines()
    ]  # fmt: skip


def check_positive_limits(app_configs=None, **kwargs: Any) -> list[CheckMessage]:
    optional = [name for name in OPTIONAL_POSITIVE_SETTINGS if getattr(settings, name) is not None]
    errors = [
        Error(f"{name} must be greater than 0, not {getattr(settings, name)!r}",
              hint="or 'off'" if name in optional else None, id="voiceprint.E006")
        for name in (*POSITIVE_SETTINGS, *optional)
        if not getattr(settings, name) > 0
    ]  # fmt: skip
    proxies = settings.VOICEPRINT_TRUSTED_PROXIES
    if proxies < 0:
        why = f"VOICEPRINT_TRUSTED_PROXIES must be 0 or more, not {proxies}"
        errors.append(Error(why, hint="the number of proxies in front", id="voiceprint.E006"))
    return errors


def check_logging(app_configs=None, **kwargs: Any) -> list[CheckMessage]:
    errors = []
    if settings.LOG_FORMAT not in LOG_FORMATS:
        why = f"LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, not {settings.LOG_FORMAT!r}"
        errors.append(Error(why, id="voiceprint.E007"))
    if settings.LOG_LEVEL not in LOG_LEVELS:
        why = f"LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, not {settings.LOG_LEVEL!r}"
        errors.append(Error(why, id="voiceprint.E007"))
    return errors


def check_cache_url(app_configs=None, **kwargs: Any) -> list[CheckMessage]:
    """VOICEPRINT_CACHE_URL (or the broker's Redis URL it defaults to) must be a Redis URL."""
    url = settings.VOICEPRINT_CACHE_URL
    if not url or url.startswith(CACHE_URL_SCHEMES):
        return []
    why = f"VOICEPRINT_CACHE_URL must be a Redis URL ({', '.join(CACHE_URL_SCHEMES)}), not {url!r}"
    return [Error(why, id="voiceprint.E008")]


#: A PostgreSQL memory size, as maintenance_work_mem takes it: "1GB", "512MB", "65536" (kB).
MEMORY_SIZE = re.compile(r"^\d+\s*(kB|MB|GB|TB)?$")


def check_index_build_memory(app_configs=None, **kwargs: Any) -> list[CheckMessage]:
    """VOICEPRINT_HNSW_BUILD_MEMORY must be a size PostgreSQL reads, or every index build
    (a migration, a bulk run) would fail at its end."""
    size = settings.VOICEPRINT_HNSW_BUILD_MEMORY
    if MEMORY_SIZE.match(size):
        return []
    why = f"VOICEPRINT_HNSW_BUILD_MEMORY must be a PostgreSQL memory size such as 2GB, not {size!r}"
    return [Error(why, id="voiceprint.E009")]


def check_audio_key(app_configs=None, **kwargs: Any) -> list[CheckMessage]:
    """VOICEPRINT_AUDIO_KEY: base64 keys of 32 bytes (utilities/sealing.py), as the storage
    of enrollment audio will read them. The message never repeats a key."""
    try:
        Keyring.from_config(settings.VOICEPRINT_AUDIO_KEY, name="VOICEPRINT_AUDIO_KEY")
    except KeyringError as exc:
        hint = "32 random bytes in base64 each, separated by commas, e.g. from " + (
            "`python manage.py rotate_audio_key --new-key`"
        )
        return [Error(str(exc), hint=hint, id="voiceprint.E020")]
    return []


def _known_engines() -> str:
    return "known engines: " + ", ".join(available_engines())


#: Registered by core.apps.CoreConfig.ready().
SETTINGS_CHECKS: tuple[Callable[..., list[CheckMessage]], ...] = (
    check_default_thresholds,
    check_rate_limit,
    check_url_allowlist,
    check_engine_environment,
    check_positive_limits,
    check_logging,
    check_cache_url,
    check_index_build_memory,
    check_audio_key,
)

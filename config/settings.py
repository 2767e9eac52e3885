"""Django settings. Every deployment setting comes from the environment (or a .env file),
read by the typed parsers of `utilities.env`: a value of the wrong type stops the process
at start-up, naming the variable; the rules between values are checked by the system
checks of `core/checks.py`."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path

import dj_database_url
from dotenv import load_dotenv

from utilities import sealing
from utilities.env import (
    env_bool,
    env_choice,
    env_count,
    env_float,
    env_int,
    env_list,
    env_optional_float,
    env_path,
    env_rate,
    env_str,
)

BASE_DIR = Path(__file__).resolve().parent.parent
# The environment wins over .env, so CI and docker-compose stay in charge.
load_dotenv(BASE_DIR / ".env", override=False)


# Runtime state of a local install (embedded database, uploaded audio, secret key).
VAR_DIR = env_path("VOICEPRINT_VAR_DIR", BASE_DIR / "var").resolve()
VAR_DIR.mkdir(parents=True, exist_ok=True)


def _local_secret(name: str, generate: Callable[[], str]) -> str:
    """A per-install random secret kept in var/`name` (readable by its owner only), so a
    fresh clone needs no configuration. Created whole under a temporary name and linked
    into place, so processes starting together all read the one that won."""
    path = VAR_DIR / name
    if not path.exists():
        draft = VAR_DIR / f".{name}.{os.getpid()}.{secrets.token_hex(4)}"
        descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(generate())
        try:
            os.link(draft, path)
        except FileExistsError:
            pass  # another process made it first: use theirs
        finally:
            draft.unlink()
    return path.read_text().strip()


SECRET_KEY = env_str("DJANGO_SECRET_KEY") or _local_secret(
    "secret_key", lambda: secrets.token_urlsafe(50)
)
DEBUG = env_bool("DJANGO_DEBUG")
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    # django.contrib.admin, with the Voiceprint console as its default site.
    "console.apps.ConsoleAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    # The platform core: start-up checks of these settings (core/checks.py).
    "core",
    "tenancy",
    "audit",
    "roles",
    "devices",
    "interrupts",
    "voiceprint",
    "credentials",
    "console",
]

MIDDLEWARE = [
    # Outermost: request id, access log and request metrics cover everything below.
    "config.middleware.RequestContextMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "core.middleware.VoiceprintEnvelopeMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # After authentication: console actions are recorded as their user's (audit log).
    "audit.middleware.AuditActorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Database: DATABASE_URL, or the embedded PostgreSQL 18 + pgvector server under var/.
if env_str("DATABASE_URL"):
    # Persistent connections, checked before reuse: after a database restart the next
    # request reconnects instead of failing on a dead connection.
    DATABASES = {
        "default": dj_database_url.parse(
            env_str("DATABASE_URL"), conn_max_age=60, conn_health_checks=True
        )
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "config.embedded_postgres",
            "NAME": "voiceprint",
            "APP_DATABASE": "voiceprint",
            "PGDATA": str(env_path("VOICEPRINT_PGDATA", VAR_DIR / "pgdata")),
            # Persistent too: a new connection costs a server process and 3-6 ms, more
            # than the identify's own queries; the supervisor's restarts are checked for.
            "CONN_MAX_AGE": 60,
            "CONN_HEALTH_CHECKS": True,
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)  # whitenoise warns when it is missing, even with finders
# Serve app static files (admin, Swagger UI) straight from the apps: no collectstatic step.
WHITENOISE_USE_FINDERS = True

# Enrollment audio: the filesystem under var/media, or S3-compatible storage through
# django-storages (pip install ".[s3]") when AWS_STORAGE_BUCKET_NAME is set; django-storages
# reads the other AWS_* variables (AWS_S3_ENDPOINT_URL, AWS_ACCESS_KEY_ID, ...) itself.
MEDIA_ROOT = env_path("VOICEPRINT_MEDIA_ROOT", VAR_DIR / "media")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
if env_str("AWS_STORAGE_BUCKET_NAME"):
    STORAGES["default"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env_str("AWS_STORAGE_BUCKET_NAME"),
            "endpoint_url": env_str("AWS_S3_ENDPOINT_URL") or None,
            "region_name": env_str("AWS_S3_REGION_NAME") or None,
            "default_acl": None,
            "querystring_auth": True,
            "file_overwrite": False,
        },
    }

# Enrollment audio is encrypted before it reaches the storage above (utilities/sealing.py,
# voiceprint/services/storage.py): base64 keys of 32 bytes, the first seals, all open
# (rotation: `manage.py rotate_audio_key`). Unset: a key generated into var/audio_key.
VOICEPRINT_AUDIO_KEY = env_list("VOICEPRINT_AUDIO_KEY") or [
    _local_secret("audio_key", sealing.new_key)
]

# Raw audio bodies are capped by the API itself; this only bounds what Django buffers.
# (10 MB of audio as base64 is 13.4 MB of JSON, and Voice API verify takes two audios;
# bigger bodies answer 41300.)
DATA_UPLOAD_MAX_MEMORY_SIZE = 30 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 15 * 1024 * 1024

DEFAULT_RATE_LIMIT = "3000/min"
DEFAULT_TOKEN_RATE_LIMIT = "1200/min"


def tenant_rate_limit() -> str | None:
    """VOICEPRINT_RATE_LIMIT: requests per tenant as DRF writes a rate, e.g. "600/min",
    counted in the default cache (CACHES); unset or empty: DEFAULT_RATE_LIMIT; "off": no
    limit."""
    return env_rate("VOICEPRINT_RATE_LIMIT", DEFAULT_RATE_LIMIT)


def token_rate_limit() -> str | None:
    """VOICEPRINT_TOKEN_RATE_LIMIT: requests per API token, as VOICEPRINT_RATE_LIMIT, beside
    it; unset or empty: DEFAULT_TOKEN_RATE_LIMIT; "off": no limit."""
    return env_rate("VOICEPRINT_TOKEN_RATE_LIMIT", DEFAULT_TOKEN_RATE_LIMIT)


REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["core.authentication.BearerTokenAuthentication"],
    # The base views of both surfaces set the same (core.envelope.CheckedAPIView).
    "DEFAULT_PERMISSION_CLASSES": [
        "core.authentication.IsTenant",
        "core.scopes.TokenScopePermission",
    ],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # DRF's parsers, refusing NUL characters and JSON nested too deep (core.input_guard).
    "DEFAULT_PARSER_CLASSES": [
        "core.input_guard.JSONParser",
        "core.input_guard.FormParser",
        "core.input_guard.MultiPartParser",
    ],
    "EXCEPTION_HANDLER": "core.envelope.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "core.schema.AutoSchema",
    "UNAUTHENTICATED_USER": None,
    "DATETIME_FORMAT": "%Y-%m-%dT%H:%M:%SZ",
    # The token's limit first: a request refused by it does not count against its tenant's.
    "DEFAULT_THROTTLE_CLASSES": [
        "core.throttling.TokenRateThrottle",
        "core.throttling.TenantRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {"token": token_rate_limit(), "tenant": tenant_rate_limit()},
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Voiceprint API",
    # The surfaces, audio forms and business codes follow (core.schema.describe_api).
    "DESCRIPTION": "Speaker recognition (voiceprint) for devices and integrators.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # One name for the "true"/"false" strings of every TrueFalseStringField (core.fields),
    # whatever the field is called (`interrupt`, `uncertain_interrupt`).
    "ENUM_NAME_OVERRIDES": {"TrueFalseEnum": ["true", "false"]},
    # Adds the business codes, the audio forms and the tag descriptions (tenancy/schema.py).
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "core.schema.describe_api",
    ],
}

# Celery: Redis when CELERY_BROKER_URL is set; otherwise tasks run in the calling process.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL")
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND", CELERY_BROKER_URL)
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# A result (an embedding) is read, then deleted, as soon as it is stored; one that nobody
# waits for any more (the web side timed out) must not stay in Redis for long.
CELERY_RESULT_EXPIRES = 60
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {"socket_connect_timeout": 2}
CELERY_REDIS_SOCKET_CONNECT_TIMEOUT = 2
# Fail fast when the broker is down: the API answers 50300 instead of hanging.
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.5,
}
CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {
    "retry_policy": {"max_retries": 2, "interval_start": 0, "interval_step": 0.2}
}
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_TASK_DEFAULT_QUEUE", "voiceprint")

# State every web process must share (the rate limit's counts): Redis when there is a Redis
# broker (or VOICEPRINT_CACHE_URL), else this process's memory. A Redis outage fails open
# (core/limits.py): no limit rather than no API; hence the short timeouts.
VOICEPRINT_CACHE_URL = env_str("VOICEPRINT_CACHE_URL") or (
    CELERY_BROKER_URL if CELERY_BROKER_URL.startswith(("redis://", "rediss://", "unix://")) else ""
)
if VOICEPRINT_CACHE_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": VOICEPRINT_CACHE_URL,
            "KEY_PREFIX": env_str("VOICEPRINT_CACHE_KEY_PREFIX", "voiceprint"),
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Product settings (API.md); each is read from the environment variable of the same name.
VOICEPRINT_MAX_VOICES_PER_DEVICE = env_int("VOICEPRINT_MAX_VOICES_PER_DEVICE", 16)
VOICEPRINT_URL_ALLOWLIST = env_str("VOICEPRINT_URL_ALLOWLIST")
VOICEPRINT_EMBED_TIMEOUT = env_float("VOICEPRINT_EMBED_TIMEOUT", 30.0)
VOICEPRINT_DEFAULT_THRESHOLDS = env_str("VOICEPRINT_DEFAULT_THRESHOLDS")
# The HNSW indexes on voice centroids (voiceprint/services/vector_index.py): build
# parameters, used when an index is (re)built, and the search breadth of store-wide identify.
# Measured by `make bench-scale` on GE2E-like embeddings (docs/BENCHMARKS.md): pgvector's
# defaults (m 16, ef_construction 64) miss the nearest voice of one probe in nine at
# ef_search 40 over 200 k voices, and need ef_search 400 for every one; m 32,
# ef_construction 128 find 98 % at 40 and all at 100, in half that time, for a build three
# times as long.
VOICEPRINT_HNSW_M = env_int("VOICEPRINT_HNSW_M", 32)
VOICEPRINT_HNSW_EF_CONSTRUCTION = env_int("VOICEPRINT_HNSW_EF_CONSTRUCTION", 128)
VOICEPRINT_HNSW_EF_SEARCH = env_int("VOICEPRINT_HNSW_EF_SEARCH", 100)
# Memory for building an HNSW index (PostgreSQL's maintenance_work_mem, for the build only):
# an m 32 graph takes about 2 KB a voice; a build that outgrows this goes on disk, 4x slower.
VOICEPRINT_HNSW_BUILD_MEMORY = env_str("VOICEPRINT_HNSW_BUILD_MEMORY", "1GB")
# A gallery (store) of at most this many voices is searched exactly, never through the index.
VOICEPRINT_EXACT_SEARCH_MAX_VOICES = env_int("VOICEPRINT_EXACT_SEARCH_MAX_VOICES", 2000)
# Bulk runs (enroll_folder, reembed, import_embeddings) writing at least this many rows drop
# the HNSW index of the dimensions they write and build it once at the end
# (voiceprint/services/bulk.py) when that also beats row by row beside the voices already
# indexed; smaller ones keep it up to date row by row. Into an empty table the fast path was
# already 2-3x faster at 2 000 rows (make bench-bulk): the default keeps runs of a minute or
# two row by row, sparing the service its exact-search window (README "Bulk runs").
VOICEPRINT_BULK_INDEX_THRESHOLD = env_int("VOICEPRINT_BULK_INDEX_THRESHOLD", 10000)

# Abuse limits (README "Abuse limits"), counted in the cache above; "off" lifts the counts.
# Failed bearer-token attempts one client address may make within the window before its
# attempts answer 42900, unchecked, for as long again.
VOICEPRINT_AUTH_FAILURE_LIMIT = env_count("VOICEPRINT_AUTH_FAILURE_LIMIT", 20)
VOICEPRINT_AUTH_FAILURE_WINDOW = env_int("VOICEPRINT_AUTH_FAILURE_WINDOW", 300)
# How many proxies in front of the service append to X-Forwarded-For; 0: the client address
# is REMOTE_ADDR (a header any client can write is never believed).
VOICEPRINT_TRUSTED_PROXIES = env_int("VOICEPRINT_TRUSTED_PROXIES", 0)
# Voices created on, and samples added to voices bound to, one device through the API.
VOICEPRINT_DEVICE_ENROLLMENTS_PER_HOUR = env_count("VOICEPRINT_DEVICE_ENROLLMENTS_PER_HOUR", 60)

# Enrollment guidance and gates (README "Enrollment"; the defaults are measured in
# docs/ENROLLMENT.md with `make bench-enrollment`). Net speech a voice should reach; one
# sample refused (40003) with less speech, a lower estimated SNR or more clipping than these.
VOICEPRINT_ENROLL_TARGET_SECONDS = env_float("VOICEPRINT_ENROLL_TARGET_SECONDS", 6.0)
VOICEPRINT_ENROLL_MIN_SPEECH_SECONDS = env_float("VOICEPRINT_ENROLL_MIN_SPEECH_SECONDS", 1.5)
VOICEPRINT_ENROLL_MIN_SNR_DB = env_float("VOICEPRINT_ENROLL_MIN_SNR_DB", 12.5)
VOICEPRINT_ENROLL_MAX_CLIPPING = env_float("VOICEPRINT_ENROLL_MAX_CLIPPING", 0.05)
#: A new voice that an existing voice on its devices or store would already match: "warn"
#: (reported in similar_voices and the enrollment issues) or "refuse" (40900).
VOICEPRINT_LOOKALIKE_POLICY = env_choice("VOICEPRINT_LOOKALIKE_POLICY", "warn", ("warn", "refuse"))
#: Safe adaptation (voiceprint/services/adaptation.py, docs/ADAPTATION.md): a confident,
#: clean identify or verify match joins its voice as a capped adaptation sample. Off: it
#: measured a small gain with a small rise of false accepts in babble.
VOICEPRINT_ADAPTATION = env_bool("VOICEPRINT_ADAPTATION", False)
#: Days audit events are kept (`manage.py purge_audit` removes older ones).
VOICEPRINT_AUDIT_RETENTION_DAYS = env_int("VOICEPRINT_AUDIT_RETENTION_DAYS", 365)
#: Days enrollment recordings are kept (`manage.py purge_audio` deletes older ones; the
#: voices keep their embeddings); None ("off", the default): kept as long as their voice.
VOICEPRINT_AUDIO_RETENTION_DAYS = env_count("VOICEPRINT_AUDIO_RETENTION_DAYS", None)

# Anti-spoofing (README "Anti-spoofing"; docs/ACCURACY.md). The countermeasure (AASIST) is
# the engine's setting VOICEPRINT_SPOOF_MODEL; a probe scoring below this threshold is a
# spoof (unset: the model's default, measured with `make bench-spoof`). Probes are checked
# when the request asks, else as the device says, else as the tenant says.
VOICEPRINT_SPOOF_THRESHOLD = env_optional_float("VOICEPRINT_SPOOF_THRESHOLD")
#: Check every enrollment sample too: a spoofed one is refused (40003) with the reason.
VOICEPRINT_ENROLL_ANTI_SPOOFING = env_bool("VOICEPRINT_ENROLL_ANTI_SPOOFING", False)

# Streaming identification, WS /v1/voiceprint/stream (docs/STREAMING.md).
#: Seconds of audio one stream may carry, and seconds it may stay silent (no message).
VOICEPRINT_STREAM_MAX_SECONDS = env_float("VOICEPRINT_STREAM_MAX_SECONDS", 600.0)
VOICEPRINT_STREAM_IDLE_TIMEOUT = env_float("VOICEPRINT_STREAM_IDLE_TIMEOUT", 10.0)
#: Streams a tenant may have open at once (over all web processes when the cache is Redis).
VOICEPRINT_STREAM_MAX_PER_TENANT = env_int("VOICEPRINT_STREAM_MAX_PER_TENANT", 16)
#: Silence that ends an utterance, and the longest utterance before it is cut.
VOICEPRINT_STREAM_ENDPOINT_MS = env_int("VOICEPRINT_STREAM_ENDPOINT_MS", 600)
VOICEPRINT_STREAM_MAX_UTTERANCE_SECONDS = env_float("VOICEPRINT_STREAM_MAX_UTTERANCE_SECONDS", 15.0)
#: Partial results: after this much speech, at most this often, on this much of the utterance.
VOICEPRINT_STREAM_PARTIAL_MIN_SPEECH = env_float("VOICEPRINT_STREAM_PARTIAL_MIN_SPEECH", 1.0)
VOICEPRINT_STREAM_PARTIAL_INTERVAL_MS = env_int("VOICEPRINT_STREAM_PARTIAL_INTERVAL_MS", 500)
VOICEPRINT_STREAM_PARTIAL_WINDOW = env_float("VOICEPRINT_STREAM_PARTIAL_WINDOW", 3.0)
#: Threads per web process that run the streams' database and engine work.
VOICEPRINT_STREAM_THREADS = env_int("VOICEPRINT_STREAM_THREADS", 8)

# The web server of `make run` (gunicorn, config/gunicorn_conf.py): worker processes, each
# with its own copy of the in-process engine, and threads per worker.
VOICEPRINT_WEB_WORKERS = env_int("VOICEPRINT_WEB_WORKERS", os.cpu_count() or 1)
VOICEPRINT_WEB_THREADS = env_int("VOICEPRINT_WEB_THREADS", 4)
#: Seconds a request may run before its worker is restarted.
VOICEPRINT_WEB_TIMEOUT = env_int("VOICEPRINT_WEB_TIMEOUT", 120)

# Observability: GET /metrics (Prometheus; see config/observability.py) is open unless
# VOICEPRINT_METRICS_TOKEN is set, then it wants `Authorization: Bearer <that token>`.
VOICEPRINT_METRICS_TOKEN = env_str("VOICEPRINT_METRICS_TOKEN")

# Logs go to stderr, one line per record, each with the request's id (config/logs.py).
# LOG_FORMAT: "json" (one JSON object per line; the default unless DJANGO_DEBUG) or "plain".
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
LOG_LEVEL = env_choice("LOG_LEVEL", "info", LOG_LEVELS).upper()
LOG_FORMAT = env_choice("LOG_FORMAT", "plain" if DEBUG else "json", ("json", "plain"))
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "config.logs.RequestIdFilter"}},
    "formatters": {
        "plain": {
            "class": "config.logs.RedactingFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s",
        },
        "json": {"class": "config.logs.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "embedded_postgres": {"level": "WARNING"},
        # Never DEBUG: it would log SQL parameters (embeddings).
        "django.db.backends": {"level": "WARNING"},
        # One line per request comes from voiceprint.access; Django's own 4xx/5xx lines
        # ("Not Found: /path") repeat it, except for errors, which carry a traceback.
        "django.request": {"level": "ERROR"},
    },
}

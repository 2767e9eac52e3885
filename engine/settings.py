"""Engine settings, read from the environment (the Django layer never passes its own)
through the typed parsers of `utilities.env`.

`EngineSettings` is read once per process; the functions below it are read where they are
used (the model download and the ONNX runtime), so that they follow the environment.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from utilities.env import (
    FALSE_WORDS,
    TRUE_WORDS,
    EnvError,
    env_bool,
    env_choice,
    env_float,
    env_int,
    env_path,
    env_str,
)

#: modelscope_hub's default API endpoint (MODELSCOPE_ENDPOINT overrides it).
DEFAULT_MODELSCOPE_ENDPOINT = "https://modelscope.cn"
#: Seconds a weights download may take (VOICEPRINT_MODEL_DOWNLOAD_TIMEOUT).
DEFAULT_DOWNLOAD_TIMEOUT = 900.0
#: The spoofing countermeasures engine.spoofing ships (VOICEPRINT_SPOOF_MODEL).
SPOOF_MODELS = ("aasist", "aasist-l")


@dataclass(frozen=True)
class EngineSettings:
    #: Preferred engine name (VOICEPRINT_ENGINE).
    engine: str = "eres2netv2"
    #: Engine used, with a WARNING, when the preferred one cannot be loaded
    #: (VOICEPRINT_ENGINE_FALLBACK; empty disables the fallback).
    fallback: str = "ge2e"
    #: A ModelScope model directory, or a folder holding them as `iic/<model>`
    #: (VOICEPRINT_MODEL_DIR). Unset: the ModelScope cache, then a download where allowed.
    model_dir: str | None = None
    #: Less speech than this after silence removal is refused (VOICEPRINT_MIN_SPEECH_SECONDS).
    min_speech_seconds: float = 1.0
    #: Speech beyond this is cut, not refused (VOICEPRINT_MAX_SPEECH_SECONDS).
    max_speech_seconds: float = 60.0
    #: Only the first this many seconds of a recording are decoded; the rest is ignored, so
    #: the work an upload causes does not grow with the length its header claims
    #: (VOICEPRINT_MAX_DECODED_SECONDS).
    max_decoded_seconds: float = 120.0
    #: At most this many source samples (frames x channels) are read from one recording: a
    #: 192 kHz 8-channel file is cut after 7.5 s, 16 kHz mono only at max_decoded_seconds
    #: (VOICEPRINT_MAX_SOURCE_SAMPLES; the default is 2 minutes of 48 kHz stereo).
    max_source_samples: int = 2 * 60 * 48_000 * 2
    #: torch intra-op threads per process; 0 keeps torch's default (VOICEPRINT_TORCH_THREADS).
    torch_threads: int = 0
    #: Optional transformers audio-classification checkpoints (a local path or a hub id)
    #: for `analyze` (VOICEPRINT_EMOTION_MODEL, VOICEPRINT_AGE_MODEL); empty: not offered.
    emotion_model: str = ""
    age_model: str = ""
    #: Concurrent embeddings run as one batch of at most this many (engine.batching);
    #: 1 turns batching off (VOICEPRINT_BATCH_MAX).
    batch_max: int = 16
    #: Milliseconds a batch that formed while another ran waits for more requests before it
    #: runs; a request finding the engine idle never waits (VOICEPRINT_BATCH_WAIT_MS).
    batch_wait_ms: float = 0.0
    #: Spoofing countermeasure of engine.spoofing: "aasist" or "aasist-l"
    #: (VOICEPRINT_SPOOF_MODEL).
    #: Default chosen by `make bench-spoof` (docs/ACCURACY.md): faster than "aasist", and the
    #: lower espeak-ng EER on the fit speakers.
    spoof_model: str = "aasist-l"

    @classmethod
    def from_env(cls) -> EngineSettings:
        return cls(
            engine=env_str("VOICEPRINT_ENGINE", cls.engine),
            # Set but empty: no fallback.
            fallback=env_str("VOICEPRINT_ENGINE_FALLBACK", cls.fallback, empty_is_set=True),
            model_dir=env_str("VOICEPRINT_MODEL_DIR") or None,
            min_speech_seconds=env_float("VOICEPRINT_MIN_SPEECH_SECONDS", cls.min_speech_seconds),
            max_speech_seconds=env_float("VOICEPRINT_MAX_SPEECH_SECONDS", cls.max_speech_seconds),
            max_decoded_seconds=env_float(
                "VOICEPRINT_MAX_DECODED_SECONDS", cls.max_decoded_seconds
            ),
            max_source_samples=env_int("VOICEPRINT_MAX_SOURCE_SAMPLES", cls.max_source_samples),
            torch_threads=env_int("VOICEPRINT_TORCH_THREADS", cls.torch_threads),
            emotion_model=env_str("VOICEPRINT_EMOTION_MODEL"),
            age_model=env_str("VOICEPRINT_AGE_MODEL"),
            batch_max=env_int("VOICEPRINT_BATCH_MAX", cls.batch_max),
            batch_wait_ms=env_float("VOICEPRINT_BATCH_WAIT_MS", cls.batch_wait_ms),
            spoof_model=env_choice("VOICEPRINT_SPOOF_MODEL", cls.spoof_model, SPOOF_MODELS),
        )

    def problems(self) -> list[str]:
        """What makes these settings unusable, in words (empty when they are fine)."""
        found = []
        if self.min_speech_seconds <= 0:
            found.append("VOICEPRINT_MIN_SPEECH_SECONDS must be greater than 0")
        if self.max_speech_seconds < self.min_speech_seconds:
            found.append(
                "VOICEPRINT_MAX_SPEECH_SECONDS must not be less than VOICEPRINT_MIN_SPEECH_SECONDS"
            )
        if self.max_decoded_seconds <= 0:
            found.append("VOICEPRINT_MAX_DECODED_SECONDS must be greater than 0")
        if self.max_source_samples <= 0:
            found.append("VOICEPRINT_MAX_SOURCE_SAMPLES must be greater than 0")
        if self.torch_threads < 0:
            found.append("VOICEPRINT_TORCH_THREADS must be 0 (torch's default) or more")
        if self.batch_max < 1:
            found.append("VOICEPRINT_BATCH_MAX must be 1 (no batching) or more")
        if not 0 <= self.batch_wait_ms <= 1000:
            found.append("VOICEPRINT_BATCH_WAIT_MS must be between 0 and 1000")
        if self.spoof_model not in SPOOF_MODELS:
            found.append("VOICEPRINT_SPOOF_MODEL must be one of " + ", ".join(SPOOF_MODELS))
        return found


def downloads_enabled() -> bool:
    """VOICEPRINT_MODEL_DOWNLOAD: may missing 3D-Speaker weights be downloaded (default yes)."""
    return env_bool("VOICEPRINT_MODEL_DOWNLOAD", True)


def download_timeout() -> float:
    """VOICEPRINT_MODEL_DOWNLOAD_TIMEOUT: seconds a weights download may take."""
    return env_float("VOICEPRINT_MODEL_DOWNLOAD_TIMEOUT", DEFAULT_DOWNLOAD_TIMEOUT)


def modelscope_endpoint() -> str:
    return env_str("MODELSCOPE_ENDPOINT", DEFAULT_MODELSCOPE_ENDPOINT)


def modelscope_cache() -> Path:
    """Where modelscope caches models (MODELSCOPE_CACHE, default ~/.cache/modelscope)."""
    return env_path("MODELSCOPE_CACHE", Path.home() / ".cache" / "modelscope")


def onnx_mode() -> str:
    """VOICEPRINT_ONNX: 'auto' (per model, the default), 'on' (1, true...) or 'off' (0...)."""
    raw = env_choice("VOICEPRINT_ONNX", "auto", ["auto", *sorted(TRUE_WORDS | FALSE_WORDS)])
    if raw in TRUE_WORDS:
        return "on"
    return "off" if raw in FALSE_WORDS else "auto"


def onnx_int8() -> bool:
    """VOICEPRINT_ONNX_INT8: run an int8 (dynamically quantised) copy of the ONNX graph where
    it agrees with fp32 on real speech (default no)."""
    return env_bool("VOICEPRINT_ONNX_INT8", False)


def onnx_provider() -> str:
    """VOICEPRINT_ONNX_PROVIDER: 'auto' (CUDA where onnxruntime has it, else CPU; the
    default), 'cpu' or 'cuda' (an error where CUDA is missing)."""
    return env_choice("VOICEPRINT_ONNX_PROVIDER", "auto", ["auto", "cpu", "cuda"])


def onnx_cache_dir() -> Path:
    """VOICEPRINT_ONNX_CACHE_DIR, default $XDG_CACHE_HOME/voiceprint/onnx."""
    xdg = env_path("XDG_CACHE_HOME", Path.home() / ".cache")
    return env_path("VOICEPRINT_ONNX_CACHE_DIR", xdg / "voiceprint" / "onnx")


def environment_problems() -> list[str]:
    """Every engine variable that cannot be read or is out of range, in words (the start-up
    checks report them; engine names are checked against the registry there)."""
    found: list[str] = []

    def attempt(read):
        try:
            return read()
        except EnvError as exc:
            found.append(str(exc))
            return None

    settings = attempt(EngineSettings.from_env)
    if settings is not None:
        found += settings.problems()
    timeout = attempt(download_timeout)
    if timeout is not None and timeout <= 0:
        found.append("VOICEPRINT_MODEL_DOWNLOAD_TIMEOUT must be greater than 0")
    for read in (downloads_enabled, modelscope_endpoint, modelscope_cache, onnx_mode,
                 onnx_int8, onnx_provider, onnx_cache_dir):  # fmt: skip
        attempt(read)
    return found

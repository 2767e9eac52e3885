"""Fixtures and helpers of the Voice API tests (/v1/voice/, API.md "Voice API").

Audio is the real speech in ../shared/audio (`speech`), plus synthetic silence and noise.
Every request runs the real engine.
"""

from __future__ import annotations

import base64
import dataclasses
import io
from functools import cache
from pathlib import Path

import numpy as np
import pytest
import soundfile

from tests.conftest import SHARED_AUDIO
from tests.local_servers import closed_port  # noqa: F401 (re-exported)

V = "/v1/voice/"
ENGINE = "ge2e"
DIM = 256
ZH = SHARED_AUDIO / "zh"
SPEAKER3D = ZH / "test" / "3d-speaker"
LIBRISPEECH = SHARED_AUDIO / "librispeech-train-clean-100"
ZH_SPEAKERS = ("fangjun", "leijun", "liudehua")
PROBE_SECONDS = 4.0
GENDER_HEAD = Path(__file__).resolve().parents[2] / "engine" / "heads" / f"gender-{ENGINE}.json"


# --------------------------------------------------------------------------- storage, engine


@pytest.fixture
def no_classifiers(monkeypatch) -> None:
    """No transformers checkpoint for emotion or age, whatever the environment says."""
    import engine

    plain = dataclasses.replace(engine.current_settings(), emotion_model="", age_model="")
    monkeypatch.setattr(engine, "current_settings", lambda: plain)


@pytest.fixture
def gender_head() -> Path:
    assert GENDER_HEAD.is_file(), f"the gender head ships with the engine: {GENDER_HEAD}"
    return GENDER_HEAD


@pytest.fixture
def campplus_active(tmp_path, monkeypatch) -> str:
    """CAM++ on random weights of the real network (no accuracy, but real embeddings of
    another size) as the active engine, so that a request naming ENGINE names an engine
    that is not the default one. Returns the active engine's name."""
    import engine
    from engine.speaker3d import CAMPPLUS, write_random_model_dir

    models = tmp_path / "models"
    write_random_model_dir(CAMPPLUS, models / CAMPPLUS.model_id, seed=1)
    monkeypatch.setenv("VOICEPRINT_ONNX", "0")  # no export: torch runs the random network
    active = dataclasses.replace(
        engine.current_settings(), engine=CAMPPLUS.name, fallback="", model_dir=str(models)
    )
    engine.configure(active)
    yield CAMPPLUS.name
    engine.configure(None)


# --------------------------------------------------------------------------- audio


@cache
def _read(path: Path) -> bytes:
    return path.read_bytes()


@cache
def _clipped(path: Path, seconds: float = PROBE_SECONDS) -> bytes:
    samples, rate = soundfile.read(io.BytesIO(_read(path)), dtype="int16")
    return wav_bytes(samples[: int(seconds * rate)], rate)


def wav_bytes(samples: np.ndarray, rate: int = 16000) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def silence(seconds: float = 3.0) -> bytes:
    return wav_bytes(np.zeros(int(16000 * seconds), dtype=np.int16))


def b64(audio: bytes) -> str:
    """Raw base64, no prefix."""
    return base64.b64encode(audio).decode("ascii")


def data_uri(audio: bytes, mime: str = "audio/wav") -> str:
    return f"data:{mime};base64,{b64(audio)}"


class Speech:
    """Bytes of the shared recordings. Probes are cut to their first PROBE_SECONDS (as WAV) to
    keep each embedding short; enrollment recordings are used whole."""

    def enroll(self, speaker: str, n: int = 2) -> bytes:
        return _read(ZH / "enroll" / f"{speaker}-sr-{n}.wav")

    def zh_tests(self, speaker: str) -> list[tuple[str, bytes]]:
        paths = sorted((ZH / "test").glob(f"{speaker}-test-sr-*.wav"))
        return [(p.name, _clipped(p)) for p in paths]

    def speaker3d(self, name: str) -> bytes:
        """e.g. "speaker1_a_en": the 3D-Speaker samples (speaker1 a/b the same person)."""
        return _clipped(SPEAKER3D / f"{name}_16k.wav")

    def librispeech(self, utterance: str) -> bytes:
        """e.g. "118-121721-0000", cut and as WAV."""
        return _clipped(LIBRISPEECH / f"{utterance}.flac")

    def librispeech_flac(self, utterance: str) -> bytes:
        return _read(LIBRISPEECH / f"{utterance}.flac")

    def sex(self, utterance: str) -> str:
        speaker = utterance.split("-")[0]
        for line in (LIBRISPEECH / "SPEAKERS.TXT").read_text().splitlines():
            fields = [f.strip() for f in line.split("|")]
            if not line.startswith(";") and fields[0] == speaker:
                return {"F": "female", "M": "male"}[fields[1]]
        raise LookupError(speaker)


@pytest.fixture
def speech(shared_audio) -> Speech:
    return Speech()


# --------------------------------------------------------------------------- API helpers


def post(api, endpoint: str, body: dict):
    return api.post(V + endpoint, body, format="json")


def ok(response, status: int = 200) -> dict:
    """A successful Voice API reply: the status and its JSON body."""
    assert response.status_code == status, (response.status_code, response.content[:300])
    assert response["Content-Type"].startswith("application/json")
    return response.json()


def error(response, status: int, code: int) -> str:
    """A failed Voice API reply: HTTP `status`, `{"error": {"code": code, "message"}}`."""
    assert response.status_code == status, (response.status_code, response.content[:300])
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message"}, body
    assert body["error"]["code"] == code, body
    message = body["error"]["message"]
    assert isinstance(message, str) and message, "an error must say what is wrong"
    assert "Traceback" not in message
    return message


def register(api, audio: bytes, name: str, **fields) -> dict:
    return ok(post(api, "register", {"audio": b64(audio), "name": name, **fields}))


def identify(api, audio: bytes, **fields) -> dict:
    return ok(post(api, "identify", {"audio": b64(audio), **fields}))


@pytest.fixture
def zh_gallery(api, speech) -> dict[str, str]:
    """The three zh speakers registered in store "zh" (one enroll file each): name -> id."""
    return {
        speaker: register(api, speech.enroll(speaker), speaker, store="zh")["id"]
        for speaker in ZH_SPEAKERS
    }

"""Engine selection, fallback, caching and the embed_* entry points."""

from __future__ import annotations

import logging
import sys
import threading
import time

import numpy as np
import pytest

import engine
from engine import registry
from engine.base import SpeakerEngine
from engine.errors import (
    EngineUnavailableError,
    InsufficientSpeechError,
    ModelNotFoundError,
    UnknownEngineError,
)
from engine.settings import EngineSettings
from tests.engine.conftest import ZH_DIR, read_speech, to_bytes


@pytest.fixture(autouse=True)
def fresh_registry(monkeypatch, tmp_path):
    """Every test starts from the environment defaults, with no model reachable."""
    for name in ("VOICEPRINT_ENGINE", "VOICEPRINT_ENGINE_FALLBACK", "VOICEPRINT_MODEL_DIR"):
        monkeypatch.delenv(name, raising=False)
    # The 3D-Speaker loader must find nothing and not try the network.
    monkeypatch.setenv("MODELSCOPE_CACHE", str(tmp_path / "modelscope-cache"))
    monkeypatch.setenv("VOICEPRINT_MODEL_DOWNLOAD", "0")
    engine.configure(None)
    yield
    engine.configure(None)


def missing_models(tmp_path, **overrides) -> EngineSettings:
    empty = tmp_path / "models"
    empty.mkdir(exist_ok=True)
    return EngineSettings(**{"engine": "eres2net", "model_dir": str(empty), **overrides})


def test_public_names():
    expected = {
        "EngineSettings", "SpeakerEngine", "PreparedAudio", "ProbeQuality", "EmbeddingResult",
        "AudioDecodeError", "InsufficientSpeechError", "EngineUnavailableError",
        "ModelNotFoundError", "UnknownEngineError", "EngineError",
        "decode_audio", "prepare_audio", "available_engines", "get_engine", "active_engine",
        "engine_status", "embed_audio", "embed_waveform", "reset_engines", "configure",
        "current_settings", "apply_thread_settings",
        "SpoofDetector", "SpoofResult", "spoof_detector", "spoof_audio", "score_waveform",
        "default_spoof_threshold",
    }  # fmt: skip
    assert set(engine.__all__) == expected
    assert all(hasattr(engine, name) for name in expected)


def test_available_engines():
    assert engine.available_engines() == ["eres2netv2", "eres2net", "campplus", "ge2e"]


def test_unknown_engine():
    with pytest.raises(UnknownEngineError, match="nope"):
        engine.get_engine("nope")


def test_engines_are_loaded_once_and_cached():
    first = engine.get_engine("ge2e")

    assert engine.get_engine("ge2e") is first
    engine.reset_engines()
    assert engine.get_engine("ge2e") is not first


def test_concurrent_first_calls_load_once(monkeypatch):
    loads = []

    class Slow(SpeakerEngine):
        name, dim, source = "ge2e", 2, "test"

        def embed(self, waveform):
            return np.array([1.0, 0.0], dtype=np.float32)

    def slow_loader(settings):
        loads.append(threading.get_ident())
        time.sleep(0.2)
        return Slow()

    monkeypatch.setitem(registry._LOADERS, "ge2e", slow_loader)
    results = []
    threads = [
        threading.Thread(target=lambda: results.append(engine.get_engine("ge2e"))) for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(loads) == 1
    assert len(results) == 4 and all(r is results[0] for r in results)


def test_missing_preferred_engine_falls_back_with_a_warning(tmp_path, caplog):
    engine.configure(missing_models(tmp_path))

    with caplog.at_level(logging.WARNING, logger="engine.registry"):
        active = engine.active_engine()

    assert active.name == "ge2e"
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "eres2net" in warnings[0].getMessage()
    status = engine.engine_status()
    assert status["name"] == "ge2e" and status["dim"] == 256 and status["source"]
    assert status["requested"] == "eres2net"
    assert "eres2net" in status["fallback_reason"]
    # Asking for the missing engine by name still says what is wrong.
    with pytest.raises(ModelNotFoundError):
        engine.get_engine("eres2net")


def test_engine_status_says_how_the_engine_runs(tmp_path, monkeypatch):
    from engine.speaker3d import CAMPPLUS, write_random_model_dir

    write_random_model_dir(CAMPPLUS, tmp_path / "models" / CAMPPLUS.model_id)
    monkeypatch.setenv("VOICEPRINT_ONNX", "1")
    monkeypatch.setenv("VOICEPRINT_ONNX_CACHE_DIR", str(tmp_path / "onnx"))
    monkeypatch.setenv("VOICEPRINT_ONNX_PROVIDER", "cpu")
    monkeypatch.setenv("VOICEPRINT_ONNX_INT8", "1")  # asked for, but no example speech
    engine.configure(EngineSettings(engine="campplus", model_dir=str(tmp_path / "models")))

    runtime = engine.engine_status()["runtime"]

    assert runtime.pop("int8_refused").startswith("no real speech to check int8 on")
    assert runtime == {"runtime": "onnxruntime", "provider": "CPUExecutionProvider",
                       "precision": "fp32"}  # fmt: skip


def test_active_engine_is_cached(tmp_path, caplog):
    engine.configure(missing_models(tmp_path))
    first = engine.active_engine()
    caplog.clear()

    with caplog.at_level(logging.WARNING, logger="engine.registry"):
        assert engine.active_engine() is first
    assert not caplog.records  # decided once: no second warning


def test_no_fallback_raises_engine_unavailable(tmp_path):
    engine.configure(missing_models(tmp_path, fallback=""))

    with pytest.raises(EngineUnavailableError, match="no fallback"):
        engine.active_engine()
    status = engine.engine_status()
    assert status["name"] is None and status["dim"] is None and status["source"] is None
    assert "eres2net" in status["error"]


def test_failing_fallback_raises_engine_unavailable(tmp_path, monkeypatch):
    def broken(settings):
        raise RuntimeError("weights corrupt")

    monkeypatch.setitem(registry._LOADERS, "ge2e", broken)
    engine.configure(missing_models(tmp_path))

    with pytest.raises(EngineUnavailableError, match="weights corrupt"):
        engine.active_engine()
    assert "error" in engine.engine_status()


def test_missing_3d_speaker_module_is_engine_unavailable(monkeypatch):
    monkeypatch.setitem(sys.modules, "engine.speaker3d", None)  # import now raises ImportError

    with pytest.raises(EngineUnavailableError, match="cannot be imported"):
        engine.get_engine("campplus")


def test_preferred_engine_used_when_it_loads(tmp_path):
    engine.configure(EngineSettings(engine="ge2e", fallback="campplus"))

    assert engine.active_engine().name == "ge2e"
    assert "fallback_reason" not in engine.engine_status()


def test_torch_threads_are_applied(monkeypatch):
    import torch

    calls = []
    monkeypatch.setattr(torch, "set_num_threads", calls.append)
    monkeypatch.setattr(registry, "_this_thread", threading.local())  # as a fresh thread
    engine.configure(EngineSettings(engine="ge2e", torch_threads=1))

    engine.get_engine("ge2e")
    engine.reset_engines()
    engine.get_engine("ge2e")

    assert calls == [1]


def test_each_thread_that_embeds_sets_the_torch_threads_once(monkeypatch):
    """Request threads and Celery pool threads embed, not the thread that loaded the engine;
    without their own torch.set_num_threads they ran many times slower (engine.registry)."""
    import torch

    engine.configure(EngineSettings(engine="ge2e", torch_threads=1))
    engine.get_engine("ge2e")
    speech = read_speech(ZH_DIR / "enroll" / "fangjun-sr-2.wav")
    calls: list[str] = []
    real = torch.set_num_threads
    monkeypatch.setattr(
        torch, "set_num_threads", lambda n: (calls.append(threading.current_thread().name), real(n))
    )

    def twice() -> None:
        engine.embed_waveform(speech)
        engine.embed_waveform(speech)

    threads = [threading.Thread(target=twice, name=f"request-{i}") for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(calls) == ["request-0", "request-1"]


def test_torch_threads_limit_every_blas_too():
    """numpy's and scipy's OpenBLAS follow VOICEPRINT_TORCH_THREADS (both start with one
    thread per core), and the limit holds for what the engine's imports load."""
    from threadpoolctl import threadpool_info, threadpool_limits

    with threadpool_limits(limits=2, user_api="blas"):  # as a fresh process has them
        engine.configure(EngineSettings(engine="ge2e", torch_threads=1))
        engine.get_engine("ge2e")
        blas = [pool for pool in threadpool_info() if pool["user_api"] == "blas"]

    assert blas and all(pool["num_threads"] == 1 for pool in blas), blas


def test_embed_audio(tmp_path):
    engine.configure(missing_models(tmp_path))
    data = to_bytes(read_speech(ZH_DIR / "enroll" / "fangjun-sr-2.wav"), subtype="PCM_16")

    result = engine.embed_audio(data)

    assert isinstance(result, engine.EmbeddingResult)
    assert (result.model, result.dim) == ("ge2e", 256)
    assert result.vector.dtype == np.float32 and result.vector.shape == (256,)
    assert np.linalg.norm(result.vector) == pytest.approx(1.0, abs=1e-5)
    assert 1.0 <= result.speech_seconds <= result.duration_seconds
    assert result.quality.speech_seconds == pytest.approx(result.speech_seconds)
    assert result.quality.snr_db > 10.0 and result.quality.clipping < 1e-4  # a clean recording
    by_name = engine.embed_audio(data, engine_name="ge2e")
    np.testing.assert_allclose(by_name.vector, result.vector, atol=1e-6)


def test_embed_waveform_uses_the_configured_limits():
    engine.configure(EngineSettings(engine="ge2e", min_speech_seconds=30.0))
    waveform = read_speech(ZH_DIR / "enroll" / "fangjun-sr-2.wav")

    with pytest.raises(InsufficientSpeechError):
        engine.embed_waveform(waveform)
    with pytest.raises(InsufficientSpeechError):  # prepare_audio's default settings, too
        engine.prepare_audio(to_bytes(waveform, subtype="PCM_16"))


def test_bad_audio_is_refused_before_any_engine_loads(monkeypatch):
    monkeypatch.setitem(registry._LOADERS, "ge2e", pytest.fail)
    engine.configure(EngineSettings(engine="ge2e"))

    with pytest.raises(engine.AudioDecodeError):
        engine.embed_audio(b"not audio")

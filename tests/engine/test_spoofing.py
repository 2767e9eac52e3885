"""engine.spoofing and engine.aasist: the shipped AASIST weights, their strict and verified
loading, the windows, batching, and scores on real speech against espeak-ng synthesis."""

from __future__ import annotations

import shutil
import subprocess
import threading

import numpy as np
import pytest
import torch

import engine
from engine.errors import AudioDecodeError, ModelNotFoundError, UnknownEngineError
from engine.settings import EngineSettings
from engine.spoofing import (
    MIN_UNTILED_SAMPLES,
    WEIGHTS_DIR,
    WINDOW_SAMPLES,
    load_spoof_detector,
    split_windows,
    spoof_batch_sizes,
    spoof_detector,
    window_count,
)
from tests.engine.conftest import (
    LIBRISPEECH_DIR,
    ZH_DIR,
    read_speech,
    shared_files,
    to_bytes,
)
from utilities.env import EnvError

#: The README of ../shared/models/aasist: parameters (state_dict numbers, batch-norm
#: statistics included) and state_dict keys.
README_SIZES = {"aasist": (299_550, 229), "aasist-l": (86_270, 229)}
SENTENCES = [
    "Please verify my voice, I would like to open the front door now.",
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "My voice is my password, and today is a very good day for a walk.",
]


@pytest.fixture(autouse=True)
def fresh_engine(monkeypatch):
    monkeypatch.delenv("VOICEPRINT_SPOOF_MODEL", raising=False)
    engine.configure(EngineSettings(torch_threads=1))
    yield
    engine.configure(None)


def seconds_of_speech(seconds: float) -> np.ndarray:
    """`seconds` of real speech: the shared Mandarin enrolments, joined."""
    joined = np.concatenate([read_speech(path) for path in shared_files(ZH_DIR / "enroll")])
    assert len(joined) >= seconds * 16_000
    return joined[: int(seconds * 16_000)]


# --- weights ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["aasist", "aasist-l"])
def test_both_sizes_load_strictly_with_the_readme_sizes(name):
    network = load_spoof_detector(name).network
    state = network.state_dict()
    numbers, keys = README_SIZES[name]
    assert sum(value.numel() for value in state.values()) == numbers
    assert len(state) == keys
    # The sinc filters are computed, not stored: none of the keys is the first layer's.
    assert not any(key.startswith("conv_time") for key in state)
    assert not network.training


def test_a_corrupted_copy_is_refused_before_loading(tmp_path):
    data = bytearray((WEIGHTS_DIR / "AASIST.pth").read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit inside the tensors' bytes
    corrupted = tmp_path / "AASIST.pth"
    corrupted.write_bytes(bytes(data))
    # The file still loads as a checkpoint: only the checksum tells it apart.
    network = load_spoof_detector("aasist").network
    network.load_state_dict(torch.load(corrupted, map_location="cpu", weights_only=True))
    with pytest.raises(ModelNotFoundError, match="sha256"):
        load_spoof_detector("aasist", weights_path=corrupted)


def test_a_missing_file_and_an_unknown_name_are_refused(tmp_path):
    with pytest.raises(ModelNotFoundError, match="missing"):
        load_spoof_detector("aasist-l", weights_path=tmp_path / "AASIST-L.pth")
    with pytest.raises(UnknownEngineError):
        spoof_detector("rawnet2")


def test_the_license_and_notice_ship_with_the_weights():
    notice = (WEIGHTS_DIR / "NOTICE").read_text()
    assert "MIT" in notice and "clovaai/aasist" in notice
    assert "NAVER" in (WEIGHTS_DIR / "LICENSE").read_text()


# --- the network ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["aasist", "aasist-l"])
def test_output_shape(name):
    windows = split_windows(seconds_of_speech(9.0))
    with torch.inference_mode():
        last_hidden, logits = spoof_detector(name).network(torch.from_numpy(windows))
    assert last_hidden.shape == (3, 5 * 32)
    assert logits.shape == (3, 2)
    assert torch.isfinite(logits).all()


def test_scores_are_deterministic():
    detector = spoof_detector("aasist-l")
    clip = seconds_of_speech(3.0)
    assert detector.score(clip) == detector.score(clip.copy())


def test_score_batch_equals_one_by_one():
    detector = spoof_detector("aasist-l")
    clips = [seconds_of_speech(seconds) for seconds in (2.0, 5.0, 3.0)]
    batch = detector.score_batch(clips)
    for clip, batched in zip(clips, batch, strict=True):
        alone = detector.score(clip)
        assert batched.windows == alone.windows
        assert batched.score == pytest.approx(alone.score, abs=1e-4)
    assert detector.score_batch([]) == []


# --- windows ----------------------------------------------------------------------------------


def test_windows_of_a_short_and_a_long_clip():
    short, long = seconds_of_speech(2.0), seconds_of_speech(10.0)
    tiled = split_windows(short)
    assert tiled.shape == (1, WINDOW_SAMPLES)
    # Repeated to length: the clip, then the clip again from its start.
    assert np.array_equal(tiled[0, : len(short)], short)
    n = len(short)  # 32,000: two whole copies, then the first 600 samples of a third
    assert np.array_equal(tiled[0, n : 2 * n], short)
    assert np.array_equal(tiled[0, 2 * n :], short[: WINDOW_SAMPLES - 2 * n])

    windows = split_windows(long)
    assert windows.shape == (3, WINDOW_SAMPLES) == (window_count(len(long)), WINDOW_SAMPLES)
    # Consecutive from the start; the last one ends at the last sample (nothing dropped).
    assert np.array_equal(windows[1], long[WINDOW_SAMPLES : 2 * WINDOW_SAMPLES])
    assert np.array_equal(windows[2], long[-WINDOW_SAMPLES:])
    assert spoof_detector("aasist-l").score(long).windows == 3


def test_audio_from_three_seconds_to_a_window_is_scored_as_it_is():
    for seconds in (3.0, 3.5, WINDOW_SAMPLES / 16_000):
        clip = seconds_of_speech(seconds)
        windows = split_windows(clip)
        assert windows.shape == (1, len(clip))
        assert np.array_equal(windows[0], clip)
    just_under = seconds_of_speech((MIN_UNTILED_SAMPLES - 1) / 16_000)
    assert split_windows(just_under).shape == (1, WINDOW_SAMPLES)  # tiled, as the authors do
    assert spoof_detector("aasist-l").score(seconds_of_speech(3.5)).windows == 1


@pytest.mark.parametrize("name", ["aasist", "aasist-l"])
def test_onnx_runtime_agrees_with_torch_on_real_speech_of_any_length(name):
    """The export (max pooling as MaxPool, pooled node counts computed in the graph) is the
    same network as torch's at every input length, not only at the example's."""
    detector = spoof_detector(name)
    assert detector.runtime == "onnxruntime"
    speech = real_speech()[:4]
    inputs = [piece[None] for piece in speech]  # one whole window each
    inputs += [piece[None, :MIN_UNTILED_SAMPLES] for piece in speech]  # 3 s, untiled
    inputs += [split_windows(piece[:20_000]) for piece in speech[:2]]  # 1.25 s, tiled
    for windows in inputs:
        onnx, reference = detector.onnx(windows), detector.torch_logits(windows)
        assert onnx.shape == reference.shape == (1, 2)
        assert np.abs(onnx - reference).max() <= 1e-4, windows.shape


def test_window_counts_at_the_edges():
    assert [window_count(n) for n in (1, WINDOW_SAMPLES, WINDOW_SAMPLES + 1)] == [1, 1, 2]
    assert window_count(3 * WINDOW_SAMPLES) == 3
    with pytest.raises(AudioDecodeError):
        split_windows(np.zeros(0, dtype=np.float32))


# --- real speech against robotic synthesis ----------------------------------------------------


def espeak(tmp_path, sentence: str, index: int) -> bytes:
    path = tmp_path / f"espeak-{index}.wav"
    subprocess.run(["espeak-ng", "-w", str(path), "-v", "en", sentence], check=True, timeout=60)
    return path.read_bytes()


@pytest.fixture
def espeak_speech(tmp_path) -> list[np.ndarray]:
    """espeak-ng sentences, decoded (22,050 Hz -> 16 kHz) as any upload would be."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng; .ci/run does)")
    return [engine.decode_audio(espeak(tmp_path, text, i)) for i, text in enumerate(SENTENCES)]


def real_speech() -> list[np.ndarray]:
    """One window (at most 4 s) of each Mandarin test file and of four LibriSpeech speakers."""
    files = shared_files(ZH_DIR / "test") + shared_files(LIBRISPEECH_DIR, "*.flac")[:4]
    return [read_speech(path)[:WINDOW_SAMPLES] for path in files]


@pytest.mark.parametrize("name", ["aasist", "aasist-l"])
def test_real_speech_scores_above_espeak_synthesis(name, espeak_speech):
    detector = spoof_detector(name)
    real = [result.score for result in detector.score_batch(real_speech())]
    synthetic = [result.score for result in detector.score_batch(espeak_speech)]
    assert np.mean(real) > np.mean(synthetic) + 1.0, (real, synthetic)


# --- spoof_audio: bytes in, batched across threads, the setting -------------------------------


def test_spoof_audio_decodes_any_rate_like_the_speaker_engines():
    clip = seconds_of_speech(3.0)
    expected = spoof_detector().score(clip)
    result = engine.spoof_audio(to_bytes(clip, fmt="FLAC"))
    assert (result.model, result.windows, result.batch_size) == ("aasist-l", 1, 1)
    assert result.score == pytest.approx(expected.score, abs=1e-4)
    with pytest.raises(AudioDecodeError):
        engine.spoof_audio(b"not audio")


def test_concurrent_calls_are_scored_as_one_batch():
    clips = [seconds_of_speech(seconds) for seconds in (2.0, 3.0, 4.0, 2.5)]
    alone = [spoof_detector("aasist-l").score(clip).score for clip in clips]
    uploads = [to_bytes(clip) for clip in clips]
    results = [None] * len(uploads)
    start = threading.Barrier(len(uploads))

    def call(index: int) -> None:
        start.wait()
        results[index] = engine.spoof_audio(uploads[index], "aasist-l")

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(uploads))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert [result.score for result in results] == pytest.approx(alone, abs=1e-4)
    # The first call runs alone at once; the others, arriving meanwhile, run together.
    assert max(result.batch_size for result in results) > 1
    assert sum(size * count for size, count in spoof_batch_sizes("aasist-l").items()) == 4


def test_the_setting_chooses_the_model(monkeypatch):
    monkeypatch.setenv("VOICEPRINT_SPOOF_MODEL", "AASIST")  # not the default
    engine.configure(None)
    assert spoof_detector().name == "aasist"
    monkeypatch.setenv("VOICEPRINT_SPOOF_MODEL", "rawnet2")
    with pytest.raises(EnvError, match="VOICEPRINT_SPOOF_MODEL"):
        EngineSettings.from_env()


def test_configure_forgets_loaded_detectors():
    first = spoof_detector("aasist-l")
    assert spoof_detector("aasist-l") is first
    engine.configure(EngineSettings(torch_threads=1))
    assert spoof_detector("aasist-l") is not first

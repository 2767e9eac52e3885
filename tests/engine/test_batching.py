"""engine.batching: concurrent embeddings run as one batch, each caller gets its own result,
equal to embedding it alone; one bad clip fails alone; through the registry too."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import engine
from engine import registry
from engine.batching import MicroBatcher
from engine.errors import InsufficientSpeechError
from engine.settings import EngineSettings
from engine.speaker3d import CAMPPLUS, load_campplus, write_random_model_dir
from tests.engine.conftest import librispeech_windows
from tests.engine.test_speaker3d import speechlike

#: Speakers (one LibriSpeech utterance each) and clip lengths: a mixed batch.
SECONDS = (1.5, 3.0, 2.2, 4.0, 3.0, 1.8, 2.6, 3.0)


@pytest.fixture(scope="module")
def clips() -> list[np.ndarray]:
    """One clip per speaker, of the lengths above: 8 different voices, 5 different lengths."""
    windows = librispeech_windows(len(SECONDS), max(SECONDS))
    return [window[: int(s * 16_000)] for window, s in zip(windows, SECONDS, strict=True)]


@pytest.fixture(scope="module")
def campplus(tmp_path_factory, monkeypatch_module):
    root = tmp_path_factory.mktemp("models")
    write_random_model_dir(CAMPPLUS, root / CAMPPLUS.model_id, seed=1)
    return load_campplus(EngineSettings(model_dir=str(root)))


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("VOICEPRINT_MODEL_DOWNLOAD", "0")
        patch.setenv("VOICEPRINT_ONNX", "0")
        yield patch


def campplus_clips() -> list[np.ndarray]:
    """Mixed lengths, some equal (3D-Speaker stacks only those): 6 inputs, 4 lengths."""
    return [speechlike(s, seed) for seed, s in enumerate((1.0, 2.0, 1.0, 1.5, 2.0, 2.5))]


class Gate:
    """Holds the first batch inside `embed_batch` until released, so that the next callers
    queue behind it: the batches then form the same way every run."""

    def __init__(self, embed_batch: Callable[[Sequence[np.ndarray]], np.ndarray]):
        self.embed_batch = embed_batch
        self.open = threading.Event()
        self.calls: list[int] = []

    def __call__(self, waveforms: Sequence[np.ndarray]) -> np.ndarray:
        if not self.calls:
            self.calls.append(len(waveforms))
            self.open.wait(timeout=60)
        else:
            self.calls.append(len(waveforms))
        return self.embed_batch(waveforms)


def gathered(batcher: MicroBatcher, gate: Gate, waveforms: list[np.ndarray]) -> list:
    """Embed `waveforms` from one thread each: the first runs alone (held by the gate), the
    others queue and then run together. Each result, or the exception it raised."""
    results: list = [None] * len(waveforms)

    def call(index: int) -> None:
        try:
            results[index] = batcher.embed(waveforms[index])
        except Exception as exc:
            results[index] = exc

    first = threading.Thread(target=call, args=(0,))
    first.start()
    while not gate.calls:  # the first call is inside the engine
        time.sleep(0.001)
    others = [threading.Thread(target=call, args=(i,)) for i in range(1, len(waveforms))]
    for thread in others:
        thread.start()
    while batcher.queued() < len(others):
        time.sleep(0.001)
    gate.open.set()
    for thread in [first, *others]:
        thread.join()
    return results


@pytest.mark.parametrize("which", ["ge2e", "campplus"])
def test_batched_results_equal_single_embeddings(which, request, clips, ge2e):
    speaker = ge2e if which == "ge2e" else request.getfixturevalue("campplus")
    waveforms = clips if which == "ge2e" else campplus_clips()
    singles = [speaker.embed(w) for w in waveforms]
    gate = Gate(speaker.embed_batch)

    results = gathered(MicroBatcher(gate, max_size=16), gate, waveforms)

    assert gate.calls == [1, len(waveforms) - 1]
    assert [r.batch_size for r in results] == [1] + [len(waveforms) - 1] * (len(waveforms) - 1)
    for result, single in zip(results, singles, strict=True):
        assert result.vector.shape == (speaker.dim,) and result.vector.dtype == np.float32
        np.testing.assert_allclose(result.vector, single, atol=1e-5)
    # Each input's own vector is far (beyond the tolerance) from every other input's: the
    # equality above means no caller got another's vector.
    assert distinct(singles)


def distinct(vectors: list[np.ndarray], tolerance: float = 1e-3) -> bool:
    return all(
        np.max(np.abs(a - b)) > tolerance for i, a in enumerate(vectors) for b in vectors[i + 1 :]
    )


def test_batches_are_capped_at_max_size(ge2e, clips):
    gate = Gate(ge2e.embed_batch)
    batcher = MicroBatcher(gate, max_size=3)

    results = gathered(batcher, gate, clips)

    assert gate.calls == [1, 3, 3, 1]
    assert batcher.batch_sizes() == {1: 2, 3: 2}
    for result, clip in zip(results, clips, strict=True):
        np.testing.assert_allclose(result.vector, ge2e.embed(clip), atol=1e-5)


@pytest.mark.parametrize("which", ["ge2e", "campplus"])
def test_a_bad_clip_fails_alone(which, request, clips, ge2e):
    """GE2E refuses an empty waveform, 3D-Speaker one too short for its network: in a batch,
    that caller gets the error and the others their vectors."""
    speaker = ge2e if which == "ge2e" else request.getfixturevalue("campplus")
    good = clips[:4] if which == "ge2e" else campplus_clips()[:4]
    bad = np.zeros(0 if which == "ge2e" else 800, dtype=np.float32)
    with pytest.raises(Exception) as alone:
        speaker.embed(bad)
    waveforms = [good[0], good[1], bad, good[2], good[3]]
    gate = Gate(speaker.embed_batch)

    results = gathered(MicroBatcher(gate, max_size=16), gate, waveforms)

    assert type(results[2]) is alone.type
    for index in (0, 1, 3, 4):
        single = speaker.embed(waveforms[index])
        np.testing.assert_allclose(results[index].vector, single, atol=1e-5)
    if which == "campplus":
        assert alone.type is InsufficientSpeechError


def test_batch_max_1_runs_each_call_alone(ge2e, clips):
    batcher = MicroBatcher(ge2e.embed_batch, max_size=1)
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(batcher.embed, clips))
    assert {r.batch_size for r in results} == {1}
    assert batcher.batch_sizes() == {1: len(clips)}


def test_a_lone_request_runs_at_once_even_with_a_wait(ge2e, clips):
    """VOICEPRINT_BATCH_WAIT_MS applies to batches that formed behind another, never to a
    request that finds the engine idle (here the wait would hang the test for an hour)."""
    batcher = MicroBatcher(ge2e.embed_batch, max_size=16, wait_seconds=3600)
    for clip in clips[:3]:
        assert batcher.embed(clip).batch_size == 1


# --------------------------------------------------------------------------- the registry


@pytest.fixture
def registry_settings(monkeypatch):
    def use(**environment: str) -> None:
        monkeypatch.setenv("VOICEPRINT_ENGINE", "ge2e")
        for name, value in environment.items():
            monkeypatch.setenv(name, value)
        engine.configure(None)

    yield use
    engine.configure(None)


def concurrent_rounds(clips: list[np.ndarray], rounds: int) -> list[engine.EmbeddingResult]:
    """`rounds` times, every clip from its own thread at once (a barrier releases them)."""
    barrier = threading.Barrier(len(clips))

    def call(clip: np.ndarray) -> engine.EmbeddingResult:
        barrier.wait()
        return engine.embed_waveform(clip)

    with ThreadPoolExecutor(max_workers=len(clips)) as pool:
        return [r for _ in range(rounds) for r in pool.map(call, clips)]


def test_registry_embeddings_are_batched_under_concurrency(registry_settings, clips, ge2e):
    registry_settings(VOICEPRINT_BATCH_MAX="16")
    singles = [engine.embed_waveform(clip).vector for clip in clips]

    results = concurrent_rounds(clips, rounds=3)

    assert max(r.batch_size for r in results) > 1
    sizes = registry.batcher_for(engine.get_engine("ge2e")).batch_sizes()
    assert sum(size * count for size, count in sizes.items()) == len(clips) * 4
    for index, result in enumerate(results):
        np.testing.assert_allclose(result.vector, singles[index % len(clips)], atol=1e-5)


def test_registry_batching_off(registry_settings, clips):
    registry_settings(VOICEPRINT_BATCH_MAX="1")

    results = concurrent_rounds(clips, rounds=1)

    assert {r.batch_size for r in results} == {1}


def test_batch_settings_are_checked(monkeypatch):
    monkeypatch.setenv("VOICEPRINT_BATCH_MAX", "0")
    monkeypatch.setenv("VOICEPRINT_BATCH_WAIT_MS", "-1")
    problems = EngineSettings.from_env().problems()
    assert "VOICEPRINT_BATCH_MAX must be 1 (no batching) or more" in problems
    assert "VOICEPRINT_BATCH_WAIT_MS must be between 0 and 1000" in problems

"""Spoofing countermeasure: is this recording a live human voice or a synthetic / converted one?

AASIST (engine.aasist) with the authors' pretrained weights, shipped in engine/weights/aasist
(MIT, see NOTICE there) and checked against their sha256 before they are loaded.

Audio in, one score out: the recording is cut into the network's 64,600-sample windows
(:func:`split_windows`; a recording of 3 s up to one window is one window of its own length),
each window gives a bona-fide logit, and the score is their mean: higher means more likely
bona fide. The score is a raw logit, not a probability; the threshold that turns it into a
decision belongs to the caller (it is measured, see `evaluate_spoof`).

Silence is NOT removed before scoring, unlike the speaker engines' input. AASIST was trained
and evaluated by its authors on ASVspoof 2019 LA utterances as recorded, leading and trailing
silences included (their data loader only repeats or cuts to 64,600 samples), and its sinc
front end sees the raw waveform: the pauses and the noise floor between words are part of
what it learned (Mueller et al., "Speech is Silver, Silence is Golden", 2021, showed that
ASVspoof 2019 models lean on the silences). Scoring VAD-trimmed audio would feed it inputs it
never saw. Whether that reliance hurts on our audio is for the measurements to show.

Concurrent :func:`spoof_audio` calls, from web threads or a Celery thread pool, are scored as
one batch (engine.batching.MicroBatcher, sized by VOICEPRINT_BATCH_MAX and _WAIT_MS).
"""

from __future__ import annotations

import hashlib
import io
import logging
import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from engine.audio import decode_audio
from engine.batching import MicroBatcher
from engine.errors import AudioDecodeError, ModelNotFoundError, UnknownEngineError
from engine.registry import (
    apply_thread_settings,
    current_settings,
    limit_this_thread,
    shared_batcher,
)
from engine.settings import SPOOF_MODELS

if TYPE_CHECKING:
    from engine.aasist import AASIST, AasistConfig

logger = logging.getLogger(__name__)

#: Samples per network input (the authors' nb_samp, about 4.04 s at 16 kHz).
WINDOW_SAMPLES = 64_600
#: Audio from this length (3 s) up to one window is scored as it is, not tiled to a window
#: (:func:`split_windows`). Measured on 674 bona fide and 674 espeak-ng pieces of 3-4 s
#: (docs/ACCURACY.md, "spoof-notes"): against tiling, aasist-l's scores correlate at 0.91
#: (bona fide) and 0.98 (espeak-ng) and at its default threshold one piece of each kind
#: changes side; aasist flags fewer bona fide pieces. Shorter audio is still tiled: cut to
#: 2.25 s and scored as they are, the same pieces flag 8.9% of bona fide against 5.8% tiled.
MIN_UNTILED_SAMPLES = 48_000
#: Windows per forward pass: a window's activations take a few hundred MB at their peak,
#: so a batch of long recordings runs in slices of this many windows.
MAX_WINDOWS_PER_PASS = 8
#: Where the shipped weights are (package data).
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights" / "aasist"


@dataclass(frozen=True)
class SpoofModel:
    name: str
    filename: str
    #: sha256 of the shipped file (engine/weights/aasist/NOTICE); anything else is refused.
    sha256: str


SPOOF_MODEL_FILES = {
    "aasist": SpoofModel(
        name="aasist",
        filename="AASIST.pth",
        sha256="51d2d9cf0738172f61e2a384ec50a54a55363240f67c971ed55a92435bc1a1c0",
    ),
    "aasist-l": SpoofModel(
        name="aasist-l",
        filename="AASIST-L.pth",
        sha256="814331d088032bb4c3fa61cc014789eadeed464209dd094ab3a2dd6ffbdce27a",
    ),
}
assert set(SPOOF_MODEL_FILES) == set(SPOOF_MODELS)


@dataclass(frozen=True)
class SpoofResult:
    #: Mean bona-fide logit over the windows: higher = more likely a live human voice.
    score: float
    #: The countermeasure that scored it ("aasist" or "aasist-l").
    model: str
    #: How many windows were scored (:func:`window_count`).
    windows: int
    #: How many concurrent requests were scored in the same batch (itself included).
    batch_size: int = 1


# --- windows ----------------------------------------------------------------------------------


def window_count(samples: int) -> int:
    """Windows :func:`split_windows` cuts ``samples`` samples into (1 for anything up to one
    window, else one per started window)."""
    return max(1, math.ceil(samples / WINDOW_SAMPLES))


def split_windows(waveform: np.ndarray) -> np.ndarray:
    """A 16 kHz mono waveform -> (windows, samples per window) float32.

    - Up to one window, and at least ``MIN_UNTILED_SAMPLES``: the audio itself, one window of
      its own length. The network's pooling is global over time, so it takes any length; the
      authors repeat (tile) short utterances to 64,600 samples instead, which for a 3 s probe
      spends a quarter of the compute on audio scored twice. Scores shift (see
      ``MIN_UNTILED_SAMPLES``), decisions at the default thresholds hardly.
    - Shorter than that: repeated (tiled) to the window's length, as the authors do.
    - Longer than a window: consecutive windows from the start, and for a remainder a last
      window that ends at the last sample, overlapping the one before. Nothing is dropped (a
      tail of cloned speech after real speech is still scored) and every window is real,
      contiguous audio (tiling a short remainder would join its end to its start, a
      discontinuity the network never saw). The overlapped part counts twice, at most one
      window's worth.
    """
    samples = np.ascontiguousarray(waveform, dtype=np.float32).reshape(-1)
    if samples.size == 0:
        raise AudioDecodeError("audio has no samples")
    if MIN_UNTILED_SAMPLES <= samples.size <= WINDOW_SAMPLES:
        return samples[np.newaxis, :]
    if samples.size <= WINDOW_SAMPLES:
        return tile_window(samples)
    count = window_count(samples.size)
    starts = [i * WINDOW_SAMPLES for i in range(count - 1)] + [samples.size - WINDOW_SAMPLES]
    return np.stack([samples[start : start + WINDOW_SAMPLES] for start in starts])


def tile_window(samples: np.ndarray) -> np.ndarray:
    """Up to one window of samples -> (1, 64,600): repeated to the window's length, as the
    authors' data loader does for every utterance shorter than a window."""
    repeats = WINDOW_SAMPLES // samples.size + 1
    return np.tile(samples, repeats)[np.newaxis, :WINDOW_SAMPLES]


# --- the detector -----------------------------------------------------------------------------


class SpoofDetector:
    """One loaded countermeasure. Thread-safe: scoring only reads the network.

    It runs on ONNX Runtime where the export of its network works and agrees with torch
    (twice as fast on the CPUs measured here: AASIST's convolutions over 21,000 frames are
    most of its time), else on torch."""

    def __init__(self, *, name: str, network: AASIST, source: Path):
        self.name = name
        self.network = network.eval()
        self.source = source
        #: (n, samples) windows -> (n, 2) logits on ONNX Runtime; None: torch runs them.
        #: Set by load_spoof_detector once the export is checked against torch_logits.
        self.onnx: Callable[[np.ndarray], np.ndarray] | None = None

    @property
    def runtime(self) -> str:
        return "onnxruntime" if self.onnx is not None else "torch"

    def score(self, waveform16k: np.ndarray) -> SpoofResult:
        """A 16 kHz mono float waveform -> its :class:`SpoofResult`."""
        return self.score_batch([waveform16k])[0]

    def score_batch(self, waveforms: Sequence[np.ndarray]) -> list[SpoofResult]:
        """Several waveforms -> their results, in order; their windows share forward passes.
        Each window is computed independently of the others (eval-mode network), so a result
        does not depend on its batch beyond float rounding."""
        if not waveforms:
            return []
        windows = [split_windows(waveform) for waveform in waveforms]
        # Windows of one length share forward passes: whole windows, and each short
        # recording's own (lengths seldom repeat).
        by_length: dict[int, list[np.ndarray]] = {}
        for item in windows:
            by_length.setdefault(item.shape[1], []).append(item)
        logits = {
            length: iter(self.bona_fide_logits(np.concatenate(items)))
            for length, items in by_length.items()
        }
        results = []
        for item in windows:
            mean = float(np.mean([next(logits[item.shape[1]]) for _ in item]))
            results.append(SpoofResult(score=mean, model=self.name, windows=len(item)))
        return results

    def bona_fide_logits(self, windows: np.ndarray) -> np.ndarray:
        """(n, samples) windows -> (n,) bona-fide logits (column 1 of the network's output)."""
        run = self.onnx or self.torch_logits
        out = [
            run(windows[start : start + MAX_WINDOWS_PER_PASS])
            for start in range(0, len(windows), MAX_WINDOWS_PER_PASS)
        ]
        return np.concatenate(out)[:, 1].astype(np.float64)

    def torch_logits(self, windows: np.ndarray) -> np.ndarray:
        """(n, samples) windows -> the network's (n, 2) logits, with torch."""
        import torch

        with torch.inference_mode():
            return self.network(torch.from_numpy(np.ascontiguousarray(windows)))[1].numpy()


def load_spoof_detector(name: str, *, weights_path: Path | None = None) -> SpoofDetector:
    """Load countermeasure ``name`` (uncached; :func:`spoof_detector` caches).

    ``weights_path`` replaces the shipped file (tests); its sha256 must still be the shipped
    one. Raises :class:`UnknownEngineError` for an unknown name and
    :class:`ModelNotFoundError` for a missing, altered or unloadable weights file.
    """
    import torch

    from engine.aasist import AASIST

    model = _model(name)
    path = weights_path or WEIGHTS_DIR / model.filename
    data = _verified_weights(model, path)
    try:
        # From the verified bytes, not the path again: what is loaded is what was checked.
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        network = AASIST(_config(name))
        network.load_state_dict(state, strict=True)
    except Exception as exc:  # an unpickling or shape error on a file with the right hash
        raise ModelNotFoundError(f"spoofing weights {path} cannot be loaded: {exc}") from exc
    logger.info("loaded spoofing countermeasure %s from %s", name, path)
    detector = SpoofDetector(name=name, network=network, source=path)
    detector.onnx = _onnx_logits(detector, path)
    return detector


#: The largest difference of logits allowed between the ONNX export and torch.
ONNX_LOGIT_TOLERANCE = 1e-3
#: The length of the short input the export is also checked on (2 s).
CHECK_SAMPLES = 32_000
#: One window per run, of any length (engine.aasist computes its pooled node counts in the
#: graph when exported): the batch axis stays fixed at the example's one window.
_ONNX_GRAPH = {
    "input_names": ["wav"],
    "output_names": ["hidden", "logits"],
    "dynamic_axes": {"wav": {1: "samples"}},
}
#: Bumped when the exported graph changes, so that no older cached export is picked up.
_ONNX_GRAPH_VERSION = 2


def _onnx_logits(
    detector: SpoofDetector, weights: Path
) -> Callable[[np.ndarray], np.ndarray] | None:
    """An ONNX Runtime run of the detector's network (cached export, checked against torch
    on two windows of noise), or None, with a WARNING, when that fails."""
    import torch

    from engine import onnx_runtime as rt

    settings = current_settings()
    key = f"{detector.name}-{rt.file_sha256(weights)[:16]}-torch{torch.__version__}"
    path = rt.onnx_cache_dir() / f"{key}-op{rt.ONNX_OPSET}-g{_ONNX_GRAPH_VERSION}.onnx"
    noise = np.random.default_rng(0).standard_normal(WINDOW_SAMPLES + CHECK_SAMPLES)
    # A whole window and a short one: the graph must follow the input's length.
    probes = [noise[None, :WINDOW_SAMPLES], noise[None, WINDOW_SAMPLES:]]

    def export(target: Path) -> None:
        logger.info("exporting %s to ONNX at %s", detector.name, target)
        example = torch.zeros(1, WINDOW_SAMPLES)
        rt.export_onnx(detector.network, target, example=example, graph=_ONNX_GRAPH)

    def checked(target: Path) -> Callable[[np.ndarray], np.ndarray]:
        session = rt.ort_session(
            target, settings.torch_threads, rt.choose_providers(rt.onnx_provider())
        )

        def run(windows: np.ndarray) -> np.ndarray:
            return np.concatenate([
                session.run(["logits"], {"wav": np.ascontiguousarray(window[None])})[0]
                for window in windows
            ])  # fmt: skip

        difference = max(
            float(np.abs(run(probe) - detector.torch_logits(probe)).max())
            for probe in (p.astype(np.float32) for p in probes)
        )
        if difference > ONNX_LOGIT_TOLERANCE:
            raise RuntimeError(f"the ONNX export differs from torch by {difference:.2e}")
        return run

    try:
        return rt.cached(path, export, checked)
    except Exception as exc:
        logger.warning("%s runs on torch: its ONNX export is unusable (%s)", detector.name, exc)
        return None


def _model(name: str) -> SpoofModel:
    model = SPOOF_MODEL_FILES.get(name)
    if model is None:
        known = ", ".join(SPOOF_MODEL_FILES)
        raise UnknownEngineError(f"unknown spoofing model {name!r}; known: {known}")
    return model


def _config(name: str) -> AasistConfig:
    from engine.aasist import AASIST_CONFIG, AASIST_L_CONFIG

    return {"aasist": AASIST_CONFIG, "aasist-l": AASIST_L_CONFIG}[name]


def _verified_weights(model: SpoofModel, path: Path) -> bytes:
    """The file's bytes when their sha256 is the shipped one; ModelNotFoundError otherwise."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelNotFoundError(
            f"spoofing weights {model.filename} missing at {path} ({exc.strerror}); they ship "
            "with the package in engine/weights/aasist/: reinstall it"
        ) from exc
    digest = hashlib.sha256(data).hexdigest()
    if digest != model.sha256:
        raise ModelNotFoundError(
            f"spoofing weights {path} have sha256 {digest}, expected {model.sha256}: the file "
            "is corrupt or not the one shipped (engine/weights/aasist/NOTICE); reinstall it"
        )
    return data


# --- process-wide detectors -------------------------------------------------------------------

_lock = threading.Lock()
_detectors: dict[str, SpoofDetector] = {}


def spoof_detector(name: str | None = None) -> SpoofDetector:
    """The countermeasure ``name`` (None: VOICEPRINT_SPOOF_MODEL), loaded once per process."""
    name = name or current_settings().spoof_model
    detector = _detectors.get(name)
    if detector is not None:
        return detector
    _model(name)  # an unknown name fails before the lock
    # The registry's lock is never taken under ours (engine.configure takes ours under its).
    apply_thread_settings()
    with _lock:
        if name not in _detectors:
            _detectors[name] = load_spoof_detector(name)
        return _detectors[name]


def spoof_audio(data: bytes, name: str | None = None) -> SpoofResult:
    """Audio bytes (any format and rate libsndfile reads) -> :class:`SpoofResult`, scored in
    one batch with concurrent calls. Raises AudioDecodeError for bytes that are not audio."""
    return score_waveform(decode_audio(data, current_settings()), name)


def score_waveform(waveform: np.ndarray, name: str | None = None) -> SpoofResult:
    """As :func:`spoof_audio`, for audio already decoded to 16 kHz mono float32 (the
    embedding job scores the waveform it embeds: engine.registry.embed_audio)."""
    detector = spoof_detector(name)
    limit_this_thread(current_settings())
    batched = _batcher_for(detector).embed(waveform)
    return replace(batched.vector, batch_size=batched.batch_size)


#: The score below which a probe is a spoof, per countermeasure, when the service's
#: VOICEPRINT_SPOOF_THRESHOLD does not say. Measured (docs/ACCURACY.md, "Spoofing
#: countermeasure"): on the fit speakers of all 251 LibriSpeech and 5 Mandarin speakers, the
#: threshold flagging about 3% of all shared bona fide speech, a margin under the 5% target;
#: aasist-l then flags 92-95% of espeak-ng synthesis, aasist about 90%.
DEFAULT_THRESHOLDS = {"aasist": -3.87, "aasist-l": -3.5}


def default_spoof_threshold(model: str) -> float:
    return DEFAULT_THRESHOLDS[model]


def _batcher_for(detector: SpoofDetector) -> MicroBatcher:
    # The speaker engines' batchers, under a key of its own (never under our lock: see
    # spoof_detector). MicroBatcher is engine-agnostic: its "vectors" are SpoofResults here.
    return shared_batcher(f"spoof:{detector.name}", detector.score_batch)


def spoof_batch_sizes(name: str | None = None) -> dict[int, int]:
    """Batch size -> how many batches of that size the countermeasure ``name`` ran."""
    return _batcher_for(spoof_detector(name)).batch_sizes()


def reset_spoof_detectors() -> None:
    """Forget the loaded countermeasures (engine.configure calls this; it drops the batchers
    too, engine.registry.shared_batcher)."""
    with _lock:
        _detectors.clear()

"""Device-like evaluation material: a household's enrollments and short, noisy probes.

A smart speaker hears 1-3 s of far-field speech, often over a TV or other people talking.
This module turns any folder of speaker-labelled speech into that situation, so that the
decision rule can be measured where it is used (voiceprint.evaluation runs the rule on it):

* each speaker's recordings are split into an **enrollment part** (K clean samples) and a
  **probe part**: with more than K recordings, the first K are the enrollment samples and the
  rest the probe part; with fewer (one long utterance each, like the shared LibriSpeech
  sample), the speech is cut in time, the first half into K samples, the second half probes;
* a **probe** is a window of the probe part (1.5, 2 or 3 s, silence included, as a device
  sends it), mixed at a chosen SNR with **babble** (three other talkers of the folder, each
  brought to the same power) or with a segment of a noise folder; the SNR is the window's
  power over the noise's power;
* for enrollment studies, an enrollment part is cut by its **speech** (as the engine counts
  it after silence removal) rather than by time, and a sample can be spoiled as devices spoil
  it: babble at an SNR, or amplified into hard clipping;
* speakers are assigned to a **part** (cohort, fit or report) by a hash of their label, so
  that a cohort, a calibration and a report made from one folder never share a speaker.

Everything here is audio; embedding and deciding happen elsewhere.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from engine.audio import SAMPLE_RATE, VAD_FRAME, decode_audio, speech_seconds
from engine.errors import AudioDecodeError
from engine.evaluation import LabelSource, audio_files, speaker_label
from engine.quality import CLIPPING_LEVEL

Part = Literal["cohort", "fit", "report"]
PARTS: tuple[Part, ...] = ("cohort", "fit", "report")

#: The probe lengths and SNRs of the household scenario (None: clean).
DEFAULT_WINDOWS = (1.5, 2.0, 3.0)
DEFAULT_SNRS: tuple[float | None, ...] = (None, 20.0, 10.0, 5.0)
BABBLE_TALKERS = 3


def speaker_part(label: str) -> Part:
    """The part a speaker belongs to: stable across runs, machines and folders."""
    return PARTS[zlib.crc32(label.encode("utf-8")) % len(PARTS)]


@dataclass(frozen=True)
class Condition:
    window_seconds: float
    snr_db: float | None  # None: clean

    @property
    def name(self) -> str:
        noise = "clean" if self.snr_db is None else f"{self.snr_db:g} dB"
        return f"{self.window_seconds:g} s, {noise}"


@dataclass
class SpeakerAudio:
    """One speaker's material, 16 kHz mono float32 with silence (as devices record)."""

    label: str
    enrollment: list[np.ndarray]
    probe_part: np.ndarray


@dataclass(frozen=True)
class Probe:
    speaker: str
    condition: Condition
    waveform: np.ndarray


@dataclass
class Material:
    speakers: list[SpeakerAudio]
    #: Files that could not be decoded: (path, reason).
    skipped: list[tuple[str, str]] = field(default_factory=list)

    @property
    def labels(self) -> list[str]:
        return [s.label for s in self.speakers]


def load_material(
    folder: Path,
    *,
    enrollment_samples: int = 3,
    part: Part | None = None,
    label_from: LabelSource = "auto",
    min_probe_seconds: float = 3.0,
) -> Material:
    """Decode a folder of speaker-labelled speech into enrollment samples and probe parts.

    ``part`` keeps only the speakers of that part (:func:`speaker_part`). A speaker whose
    probe part is shorter than ``min_probe_seconds`` is left out.
    """
    folder = Path(folder)
    by_speaker: dict[str, list[np.ndarray]] = {}
    skipped: list[tuple[str, str]] = []
    for path in audio_files(folder):
        label = speaker_label(path, folder, label_from)
        if part is not None and speaker_part(label) != part:
            continue
        try:
            by_speaker.setdefault(label, []).append(decode_audio(path.read_bytes()))
        except (AudioDecodeError, OSError) as exc:
            skipped.append((str(path), str(exc)))
    speakers = []
    for label in sorted(by_speaker):
        speaker = split_speaker(label, by_speaker[label], enrollment_samples=enrollment_samples)
        if len(speaker.probe_part) >= min_probe_seconds * SAMPLE_RATE:
            speakers.append(speaker)
    return Material(speakers=speakers, skipped=skipped)


def split_speaker(
    label: str, recordings: Sequence[np.ndarray], *, enrollment_samples: int = 3
) -> SpeakerAudio:
    """Enrollment samples and probe part of one speaker (rule in the module docstring)."""
    if len(recordings) > enrollment_samples:
        return SpeakerAudio(
            label=label,
            enrollment=list(recordings[:enrollment_samples]),
            probe_part=np.concatenate(recordings[enrollment_samples:]),
        )
    joined = np.concatenate(recordings)
    half = len(joined) // 2
    return SpeakerAudio(
        label=label,
        enrollment=list(np.array_split(joined[:half], enrollment_samples)),
        probe_part=joined[half:],
    )


def probe_windows(source: np.ndarray, window_seconds: float, count: int) -> list[np.ndarray]:
    """``count`` windows spread evenly over ``source`` (overlapping only when it is short)."""
    length = int(window_seconds * SAMPLE_RATE)
    if len(source) < length:
        return []
    starts = np.linspace(0, len(source) - length, count).astype(int)
    return [source[s : s + length] for s in starts]


def speech_prefix(waveform: np.ndarray, seconds: float) -> np.ndarray | None:
    """The shortest start of ``waveform`` (in whole VAD frames) that holds ``seconds`` of
    speech by the engine's own count of that piece; None when all of it holds less."""
    if speech_seconds(waveform) < seconds:
        return None
    low, high = 0, len(waveform) // VAD_FRAME + 1  # speech(low) < seconds <= speech(high)
    while high - low > 1:
        middle = (low + high) // 2
        if speech_seconds(waveform[: middle * VAD_FRAME]) >= seconds:
            high = middle
        else:
            low = middle
    return waveform[: high * VAD_FRAME]


def speech_pieces(waveform: np.ndarray, seconds: Sequence[float]) -> list[np.ndarray] | None:
    """Consecutive pieces of ``waveform`` holding ``seconds[i]`` of speech each (None when
    it holds too little), and the rest after them as the last element."""
    pieces, rest = [], waveform
    for wanted in seconds:
        piece = speech_prefix(rest, wanted)
        if piece is None:
            return None
        pieces.append(piece)
        rest = rest[len(piece) :]
    return [*pieces, rest]


def clip_to_share(waveform: np.ndarray, share: float) -> np.ndarray:
    """``waveform`` amplified, then hard-clipped at full scale, so that ``share`` of its
    samples reach the clipping level of engine.quality (an overdriven microphone)."""
    if not 0.0 < share < 1.0:
        raise ValueError(f"a share of samples in (0, 1), not {share}")
    level = float(np.quantile(np.abs(waveform), 1.0 - share))
    if level <= 0.0:
        raise ValueError(f"fewer than {share:.1%} of the samples are not silent")
    return np.clip(waveform * (CLIPPING_LEVEL / level), -1.0, 1.0).astype(np.float32)


def mix_at_snr(speech: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """``speech`` plus ``noise`` scaled so that their power ratio is ``snr_db``."""
    speech_power = float(np.mean(np.square(speech, dtype=np.float64)))
    noise_power = float(np.mean(np.square(noise, dtype=np.float64)))
    if speech_power == 0.0 or noise_power == 0.0:
        return speech.astype(np.float32)
    gain = np.sqrt(speech_power / noise_power / 10.0 ** (snr_db / 10.0))
    return (speech + gain * noise).astype(np.float32)


def babble(talkers: Sequence[np.ndarray], length: int, rng: np.random.Generator) -> np.ndarray:
    """Random segments of ``talkers``, each at unit power, summed: a room of people talking."""
    mixed = np.zeros(length, dtype=np.float32)
    for talker in talkers:
        mixed += _unit_power(_random_segment(talker, length, rng))
    return mixed


def noise_segment(
    noises: Sequence[np.ndarray], length: int, rng: np.random.Generator
) -> np.ndarray:
    """A random segment of a random recording of a noise folder."""
    return _random_segment(noises[int(rng.integers(len(noises)))], length, rng)


def make_probes(
    material: Material,
    conditions: Sequence[Condition],
    *,
    windows_per_speaker: int = 3,
    noises: Sequence[np.ndarray] = (),
    seed: int = 0,
) -> Iterator[Probe]:
    """Every speaker's probe windows in every condition.

    The noise of a window is drawn once and shared by its SNR levels, so that conditions
    differ only in the SNR. Babble talkers are other speakers of ``material``.
    """
    rng = np.random.default_rng(seed)
    sources = [s.probe_part for s in material.speakers]
    for windows in sorted({c.window_seconds for c in conditions}):
        for index, speaker in enumerate(material.speakers):
            for window in probe_windows(speaker.probe_part, windows, windows_per_speaker):
                noise = _noise_for(index, sources, noises, len(window), rng)
                for condition in conditions:
                    if condition.window_seconds != windows:
                        continue
                    mixed = (
                        window
                        if condition.snr_db is None
                        else mix_at_snr(window, noise, condition.snr_db)
                    )
                    yield Probe(speaker=speaker.label, condition=condition, waveform=mixed)


def _noise_for(
    index: int,
    sources: Sequence[np.ndarray],
    noises: Sequence[np.ndarray],
    length: int,
    rng: np.random.Generator,
) -> np.ndarray:
    if noises:
        return noise_segment(noises, length, rng)
    others = [i for i in range(len(sources)) if i != index]
    if not others:
        raise ValueError("babble needs other talkers: give at least two speakers or a noise folder")
    chosen = rng.choice(others, size=min(BABBLE_TALKERS, len(others)), replace=False)
    return babble([sources[i] for i in chosen], length, rng)


def load_noises(folder: Path) -> list[np.ndarray]:
    """Every decodable recording of a noise folder (TV, music, fans...)."""
    noises = []
    for path in audio_files(Path(folder)):
        try:
            noises.append(decode_audio(path.read_bytes()))
        except (AudioDecodeError, OSError):
            continue
    if not noises:
        raise ValueError(f"no usable audio in the noise folder {folder}")
    return noises


def _random_segment(recording: np.ndarray, length: int, rng: np.random.Generator) -> np.ndarray:
    if len(recording) <= length:
        return np.resize(recording, length)
    start = int(rng.integers(0, len(recording) - length))
    return recording[start : start + length]


def _unit_power(segment: np.ndarray) -> np.ndarray:
    power = float(np.mean(np.square(segment, dtype=np.float64)))
    return segment / np.float32(np.sqrt(power)) if power > 0 else segment

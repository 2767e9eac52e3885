"""The household material: splits, windows and mixes that the evaluation rests on."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from engine.audio import SAMPLE_RATE, VAD_FRAME, decode_audio, speech_seconds
from engine.household import (
    PARTS,
    Condition,
    clip_to_share,
    load_material,
    make_probes,
    mix_at_snr,
    probe_windows,
    speaker_part,
    speech_pieces,
    speech_prefix,
    split_speaker,
)
from engine.quality import clipped_share
from tests.conftest import SHARED_AUDIO, require_shared

LIBRISPEECH = SHARED_AUDIO / "librispeech-train-clean-100"


def test_speaker_parts_are_stable_and_all_used():
    labels = [str(n) for n in range(300)]
    parts = [speaker_part(label) for label in labels]
    assert parts == [speaker_part(label) for label in labels]
    assert set(parts) == set(PARTS)
    # Roughly a third each: a split that starved one part would break the fit or the report.
    assert min(parts.count(p) for p in PARTS) > 60


def test_one_recording_is_cut_in_time_several_are_kept_whole():
    long = np.arange(16 * SAMPLE_RATE, dtype=np.float32)
    single = split_speaker("a", [long], enrollment_samples=3)
    assert len(single.enrollment) == 3
    assert sum(len(s) for s in single.enrollment) == len(long) // 2
    assert single.probe_part[0] == long[len(long) // 2]  # probes never reuse enrollment audio
    recordings = [np.full(SAMPLE_RATE, i, dtype=np.float32) for i in range(5)]
    several = split_speaker("b", recordings, enrollment_samples=3)
    assert [int(s[0]) for s in several.enrollment] == [0, 1, 2]
    assert set(np.unique(several.probe_part)) == {3.0, 4.0}


def test_mix_reaches_the_requested_snr():
    rng = np.random.default_rng(0)
    speech = rng.standard_normal(SAMPLE_RATE).astype(np.float32) * 0.1
    noise = rng.standard_normal(SAMPLE_RATE).astype(np.float32)
    mixed = mix_at_snr(speech, noise, 5.0)
    added = mixed - speech
    snr = 10 * np.log10(np.mean(speech**2) / np.mean(added**2))
    assert snr == pytest.approx(5.0, abs=0.01)


def test_windows_spread_over_the_source():
    source = np.arange(10 * SAMPLE_RATE, dtype=np.float32)
    windows = probe_windows(source, 2.0, 3)
    assert [len(w) for w in windows] == [2 * SAMPLE_RATE] * 3
    assert windows[0][0] == 0 and windows[-1][-1] == source[-1]
    assert probe_windows(source[:SAMPLE_RATE], 2.0, 3) == []


def test_material_from_real_speech_makes_every_condition(tmp_path):
    require_shared(LIBRISPEECH)
    for path in sorted(LIBRISPEECH.glob("*.flac"))[:4]:
        shutil.copy(path, tmp_path / path.name)
    material = load_material(tmp_path)
    assert len(material.speakers) >= 3
    conditions = [Condition(2.0, None), Condition(2.0, 5.0)]
    probes = list(make_probes(material, conditions, windows_per_speaker=2))
    assert len(probes) == len(material.speakers) * 2 * 2
    clean = [p for p in probes if p.condition.snr_db is None]
    noisy = [p for p in probes if p.condition.snr_db == 5.0]
    # The noisy copy is the clean window plus babble at 5 dB: same speech, more power.
    for a, b in zip(clean, noisy, strict=True):
        assert a.speaker == b.speaker
        extra = b.waveform - a.waveform
        assert 10 * np.log10(np.mean(a.waveform**2) / np.mean(extra**2)) == pytest.approx(
            5, abs=0.1
        )
    # The enrollment samples are the speaker's own decoded speech.
    first = sorted(tmp_path.glob("*.flac"))[0]
    decoded = decode_audio(first.read_bytes())
    speaker = material.speakers[0]
    assert np.array_equal(speaker.enrollment[0], decoded[: len(speaker.enrollment[0])])


def _utterance() -> np.ndarray:
    require_shared(LIBRISPEECH)
    path = max(LIBRISPEECH.glob("*.flac"), key=lambda p: p.stat().st_size)
    return decode_audio(path.read_bytes())


def test_pieces_hold_the_speech_asked_for_by_the_engines_count():
    utterance = _utterance()
    pieces = speech_pieces(utterance, [1.5, 1.5, 2.0])
    assert pieces is not None
    *samples, _rest = pieces
    for sample, wanted in zip(samples, [1.5, 1.5, 2.0], strict=True):
        assert speech_seconds(sample) >= wanted
        # The shortest such piece: one frame less holds less (the VAD frame is 30 ms).
        assert speech_seconds(sample[:-VAD_FRAME]) < wanted
    assert sum(len(p) for p in pieces) == len(utterance)  # consecutive, nothing lost
    assert speech_prefix(utterance[: SAMPLE_RATE // 2], 1.0) is None


def test_clipping_reaches_the_share_engine_quality_measures():
    utterance = _utterance()
    for share in (0.001, 0.01, 0.1):
        clipped = clip_to_share(utterance, share)
        assert np.abs(clipped).max() <= 1.0
        assert clipped_share(clipped) == pytest.approx(share, rel=0.05)
    with pytest.raises(ValueError):
        clip_to_share(np.zeros(SAMPLE_RATE, dtype=np.float32), 0.01)

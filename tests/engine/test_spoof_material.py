"""The anti-spoofing material: bona fide pieces, simulated replays and espeak-ng speech."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile
from scipy import signal

from engine.audio import SAMPLE_RATE
from engine.spoof_material import (
    CHINESE_SENTENCES,
    ENGLISH_SENTENCES,
    ESPEAK_VARIANTS,
    SPOOF_PARTS,
    EspeakUtterance,
    ReplayParameters,
    cut_pieces,
    espeak_plan,
    espeak_synthesize,
    make_material,
    material_part,
    room_impulse_response,
    simulate_replay,
)
from tests.conftest import require_espeak
from tests.engine.conftest import LIBRISPEECH_DIR, read_speech, shared_files


def band_power(x: np.ndarray, low: float, high: float) -> float:
    freqs, power = signal.welch(x, fs=SAMPLE_RATE, nperseg=1024)
    return float(power[(freqs >= low) & (freqs < high)].sum())


def test_pieces_are_3_to_4_seconds_and_consecutive():
    waveform = np.arange(20 * SAMPLE_RATE, dtype=np.float32)

    pieces = cut_pieces(waveform, rng=np.random.default_rng(0), limit=10)

    assert 4 <= len(pieces) <= 6
    assert all(3 * SAMPLE_RATE <= len(p) <= 4 * SAMPLE_RATE for p in pieces)
    assert pieces[1][0] == pieces[0][-1] + 1


def test_a_recording_shorter_than_3_seconds_gives_no_piece():
    assert cut_pieces(np.zeros(int(2.9 * SAMPLE_RATE)), rng=np.random.default_rng(0)) == []


def test_room_response_decays_by_its_rt60():
    rir = room_impulse_response(
        rt60_seconds=0.5, direct_to_reverberant_db=5.0, rng=np.random.default_rng(1)
    )

    assert rir[0] == 1.0 and len(rir) == SAMPLE_RATE // 2
    tail = rir[10:]
    early, late = tail[: SAMPLE_RATE // 20], tail[-SAMPLE_RATE // 20 :]
    # 60 dB over 0.5 s: the last 50 ms are about 50 dB below the first 50 ms.
    assert 10 * np.log10(np.mean(early**2) / np.mean(late**2)) > 40
    assert 10 * np.log10(1.0 / np.sum(tail**2)) == pytest.approx(5.0, abs=0.01)


def test_replay_is_band_limited_reverberant_and_reproducible():
    speech = read_speech(sorted(LIBRISPEECH_DIR.glob("*.flac"))[0])[: 3 * SAMPLE_RATE]
    parameters = ReplayParameters.draw(np.random.default_rng(7))

    replay = simulate_replay(speech, parameters, rng=np.random.default_rng(7))
    again = simulate_replay(speech, parameters, rng=np.random.default_rng(7))

    assert replay.dtype == np.float32 and len(replay) == len(speech)
    assert np.array_equal(replay, again)
    assert np.max(np.abs(replay)) == pytest.approx(parameters.peak, rel=1e-3)
    # The small loudspeaker: what is below 100 Hz loses much more than the voice band.
    low_loss = band_power(replay, 20, 100) / band_power(speech, 20, 100)
    voice_loss = band_power(replay, 500, 3000) / band_power(speech, 500, 3000)
    assert low_loss < voice_loss / 10
    # The room: the replay is no longer the speech, even when levels are matched.
    assert np.corrcoef(replay, speech)[0, 1] < 0.9


def test_parts_split_speakers_and_espeak_voices():
    assert material_part("leijun") == "report" and material_part("fangjun") == "fit"
    for part in SPOOF_PARTS:
        assert any(material_part(v) == part for v in ESPEAK_VARIANTS)
    plans = {p: espeak_plan(count=40, part=p, rng=np.random.default_rng(0)) for p in SPOOF_PARTS}
    variants = {p: {u.variant for u in plan} for p, plan in plans.items()}
    texts = {p: {u.text for u in plan} for p, plan in plans.items()}
    assert not variants["fit"] & variants["report"]
    assert not texts["fit"] & texts["report"]
    assert set(ENGLISH_SENTENCES) & texts["report"] and set(CHINESE_SENTENCES) & texts["report"]


def test_espeak_speaks_english_and_mandarin():
    require_espeak()
    for language, text in (("en-us", ENGLISH_SENTENCES[0]), ("cmn", CHINESE_SENTENCES[0])):
        utterance = EspeakUtterance(language, "m3", text, speed=160, pitch=50)

        waveform = espeak_synthesize(utterance)

        assert waveform.dtype == np.float32 and waveform.ndim == 1
        assert 1.5 * SAMPLE_RATE < len(waveform) < 10 * SAMPLE_RATE
        assert np.sqrt(np.mean(waveform**2)) > 0.01


def test_material_of_two_recordings(tmp_path):
    require_espeak()
    files = shared_files(LIBRISPEECH_DIR, "*.flac")
    speakers = {f.name.split("-")[0]: [f] for f in files if soundfile.info(f).duration > 7}
    two = dict(list(speakers.items())[:2])

    summary = make_material(tmp_path / "a", speakers=two, seed=3, progress=False)
    make_material(tmp_path / "b", speakers=two, seed=3, progress=False)

    bonafide = sorted((tmp_path / "a" / "bonafide").glob("*.wav"))
    replays = sorted((tmp_path / "a" / "spoof" / "replay").glob("*.wav"))
    espeak = sorted((tmp_path / "a" / "spoof" / "espeak").glob("*.wav"))
    assert summary.speakers == 2 and summary.bonafide == len(bonafide) >= 4
    assert [p.name for p in replays] == [p.name for p in bonafide]
    assert len(espeak) == summary.espeak == summary.bonafide
    for path in (bonafide[0], replays[0], espeak[0]):
        info = soundfile.info(path)
        assert (info.samplerate, info.channels, info.subtype) == (SAMPLE_RATE, 1, "PCM_16")
    # Same seed, same files.
    for path in (bonafide[0], replays[0], espeak[0]):
        twin = tmp_path / "b" / path.relative_to(tmp_path / "a")
        assert twin.read_bytes() == path.read_bytes()


def test_material_of_one_part_only(tmp_path):
    files = shared_files(LIBRISPEECH_DIR, "*.flac")[:12]
    speakers = {f.name.split("-")[0]: [f] for f in files}

    make_material(tmp_path, speakers=speakers, part="report", espeak=False, progress=False)

    written = {p.name.split("-")[0] for p in (tmp_path / "bonafide").glob("*.wav")}
    assert written and all(material_part(label) == "report" for label in written)
    assert not (tmp_path / "spoof" / "espeak").exists()

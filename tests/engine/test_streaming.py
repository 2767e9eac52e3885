"""engine.streaming: utterances cut from a live stream, on real speech (../shared/audio/zh)."""

from __future__ import annotations

import numpy as np
import pytest
import soxr

from engine.audio import speech_seconds
from engine.streaming import SpeechEnded, SpeechStarted, StreamResampler, UtteranceSegmenter
from tests import factories as make

RATE = 16_000


def _speech(speaker: str = "leijun", n: int = 2) -> np.ndarray:
    return make.decode(make.probe_speech(speaker, n))[0].astype(np.float32)


def _silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * RATE), dtype=np.float32)


def _run(audio: np.ndarray, *, chunk: float = 0.1, **options) -> list:
    segmenter = UtteranceSegmenter(**options)
    step = int(chunk * RATE)
    events = []
    for start in range(0, len(audio), step):
        events += segmenter.push(audio[start : start + step])
    return events


def test_two_recordings_apart_are_two_utterances_at_their_places(shared_audio):
    first, second = _speech("leijun", 2), _speech("fangjun", 2)
    audio = np.concatenate([_silence(1.0), first, _silence(1.5), second, _silence(1.0)])
    events = _run(audio)
    kinds = [type(e).__name__ for e in events]
    assert kinds == ["SpeechStarted", "SpeechEnded"] * 2, kinds
    start_1, end_1, start_2, end_2 = events
    assert 1.0 <= start_1.at <= 1.0 + len(first) / RATE
    assert start_2.at >= 1.0 + len(first) / RATE + 0.5  # after the pause, not in it
    for ended, recording in ((end_1, first), (end_2, second)):
        assert ended.reason == "silence"
        # The utterance holds the recording's speech (silence removal pads each word by 90
        # ms on both sides, which the live count does not).
        assert ended.speech_seconds == pytest.approx(speech_seconds(recording), rel=0.2)
        assert speech_seconds(ended.waveform) == pytest.approx(speech_seconds(recording), rel=0.1)
        assert len(ended.waveform) / RATE <= len(recording) / RATE + 0.6


def test_the_cut_does_not_depend_on_the_frame_size(shared_audio):
    audio = np.concatenate([_silence(0.5), _speech(), _silence(1.0)])
    small, large = _run(audio, chunk=0.02), _run(audio, chunk=0.2)
    assert [(type(e), e.at) for e in small] == [(type(e), e.at) for e in large]
    assert np.array_equal(small[-1].waveform, large[-1].waveform)


def test_silence_and_faint_hiss_start_nothing():
    rng = np.random.default_rng(3)
    hiss = (rng.standard_normal(5 * RATE) * 1e-4).astype(np.float32)
    assert _run(np.concatenate([_silence(2.0), hiss])) == []


def test_quiet_speech_is_heard(shared_audio):
    quiet = _speech() * np.float32(10 ** (-25 / 20))  # 25 dB down: a far-field talker
    events = _run(np.concatenate([_silence(0.5), quiet, _silence(1.0)]))
    assert any(isinstance(e, SpeechStarted) for e in events)
    ended = [e for e in events if isinstance(e, SpeechEnded)]
    assert sum(e.speech_seconds for e in ended) > 0.5 * speech_seconds(_speech())


def test_an_utterance_is_cut_at_its_longest_and_the_next_follows(shared_audio):
    speech = np.concatenate([_speech("leijun", 1)] * 3)  # ~25 s with short pauses
    events = _run(speech, endpoint_seconds=2.0, max_utterance_seconds=4.0)
    ended = [e for e in events if isinstance(e, SpeechEnded)]
    assert any(e.reason == "max_length" for e in ended)
    assert all(len(e.waveform) / RATE <= 4.0 + 1e-6 for e in ended)


def test_split_keeps_the_newest_seconds_as_the_next_utterance(shared_audio):
    segmenter = UtteranceSegmenter()
    speech = _speech("leijun", 1)[: int(2.9 * RATE)]  # inside its first utterance
    segmenter.push(speech)
    assert segmenter.in_speech
    before = segmenter.utterance_audio()
    head = segmenter.split(keep_seconds=1.5)
    assert head.reason == "speaker_change"
    tail = segmenter.utterance_audio()
    assert len(tail) == pytest.approx(1.5 * RATE, abs=480)
    assert np.array_equal(np.concatenate([head.waveform, tail]), before)
    assert head.at == pytest.approx(segmenter.position_seconds - len(tail) / RATE)
    assert segmenter.split(keep_seconds=60.0) is None  # nothing left before it


@pytest.mark.parametrize("rate", [8_000, 44_100, 48_000])
def test_other_rates_are_resampled_as_they_arrive(shared_audio, rate):
    speech = _speech()
    pcm = (soxr.resample(speech, RATE, rate) * 32767).astype("<i2")
    resampler = StreamResampler(rate)
    step = rate // 10
    out = np.concatenate([resampler.push(pcm[i : i + step].tobytes())
                          for i in range(0, len(pcm), step)])  # fmt: skip
    # Streaming resamplers hold back a few ms; the rest is there, and still speech.
    assert len(out) == pytest.approx(len(speech), abs=0.1 * RATE)
    assert speech_seconds(out) == pytest.approx(speech_seconds(speech), abs=0.3)

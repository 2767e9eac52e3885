"""One stream's audio state, without I/O: frames in; the events due now, the utterances to
decide (finals) and whether a partial result is due, out.

The connection (voiceprint.streaming.asgi) feeds every audio message to `StreamSession.push`
and runs the analysis the session asks for; keeping the rules here lets them be tested
frame by frame without a socket.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from django.conf import settings

import engine
from engine.audio import speech_seconds as engine_speech_seconds
from engine.streaming import SpeechEnded, SpeechStarted, StreamResampler, UtteranceSegmenter
from voiceprint.services.storage import wav_encode


@dataclass(frozen=True)
class StreamLimits:
    max_seconds: float
    idle_timeout: float
    endpoint_seconds: float
    max_utterance_seconds: float
    partial_min_speech: float
    partial_interval: float
    partial_window: float

    @classmethod
    def from_settings(cls) -> StreamLimits:
        return cls(
            max_seconds=settings.VOICEPRINT_STREAM_MAX_SECONDS,
            idle_timeout=settings.VOICEPRINT_STREAM_IDLE_TIMEOUT,
            endpoint_seconds=settings.VOICEPRINT_STREAM_ENDPOINT_MS / 1000,
            max_utterance_seconds=settings.VOICEPRINT_STREAM_MAX_UTTERANCE_SECONDS,
            partial_min_speech=settings.VOICEPRINT_STREAM_PARTIAL_MIN_SPEECH,
            partial_interval=settings.VOICEPRINT_STREAM_PARTIAL_INTERVAL_MS / 1000,
            partial_window=settings.VOICEPRINT_STREAM_PARTIAL_WINDOW,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "max_seconds": self.max_seconds,
            "idle_timeout_seconds": self.idle_timeout,
            "endpoint_ms": round(self.endpoint_seconds * 1000),
            "max_utterance_seconds": self.max_utterance_seconds,
            "partial_min_speech_seconds": self.partial_min_speech,
            "partial_interval_ms": round(self.partial_interval * 1000),
            "partial_window_seconds": self.partial_window,
        }


@dataclass(frozen=True)
class UtteranceJob:
    """Audio to decide: a whole utterance (final) or its newest seconds (partial)."""

    utterance: int
    #: Stream seconds when the job was cut.
    at: float
    #: The audio as every service takes it (16 kHz 16-bit WAV).
    wav: bytes
    #: Seconds of speech the engine will find in `wav`.
    speech_seconds: float
    #: Stream seconds where the utterance began (finals).
    start: float = 0.0


def _job(utterance: int, at: float, waveform: np.ndarray, start: float = 0.0) -> UtteranceJob:
    """The job's WAV, and its speech counted as the engine will count it: on the very samples
    the engine decodes, so that a job judged to have enough speech is never refused 40003."""
    wav = wav_encode(waveform)
    speech = engine_speech_seconds(engine.decode_audio(wav))
    return UtteranceJob(utterance=utterance, at=at, wav=wav, speech_seconds=speech, start=start)


class StreamSession:
    """Segments the stream into utterances and paces the partial results."""

    def __init__(self, *, sample_rate: int, limits: StreamLimits) -> None:
        self.limits = limits
        self._resampler = StreamResampler(sample_rate)
        self._segmenter = UtteranceSegmenter(
            endpoint_seconds=limits.endpoint_seconds,
            max_utterance_seconds=limits.max_utterance_seconds,
        )
        self._rate = sample_rate
        self._received = 0  # samples at the stream's own rate
        self.utterance = 0  # the current (or last) utterance's number, from 1
        self._utterance_start = 0.0
        self._next_partial_at = 0.0
        self._min_speech = max(
            limits.partial_min_speech, engine.current_settings().min_speech_seconds
        )

    @property
    def received_seconds(self) -> float:
        return self._received / self._rate

    @property
    def exhausted(self) -> bool:
        """The stream has carried its most audio (VOICEPRINT_STREAM_MAX_SECONDS)."""
        return self.received_seconds >= self.limits.max_seconds

    @property
    def in_speech(self) -> bool:
        return self._segmenter.in_speech

    def push(self, pcm: bytes) -> tuple[list[dict[str, Any]], list[UtteranceJob]]:
        """One audio message: the events due now (speech_start), and the utterances that
        ended (each gets its speech_end, and a final when identifiable)."""
        samples = self._resampler.push(pcm)
        self._received += len(pcm) // 2
        events: list[dict[str, Any]] = []
        finals: list[UtteranceJob] = []
        for segment in self._segmenter.push(samples):
            if isinstance(segment, SpeechStarted):
                events.append(self._started(segment))
            else:
                self._ended(segment, events, finals)
        return events, finals

    def flush(self) -> tuple[list[dict[str, Any]], list[UtteranceJob]]:
        """End the utterance in progress (stop, or the stream's last audio)."""
        events: list[dict[str, Any]] = []
        finals: list[UtteranceJob] = []
        ended = self._segmenter.flush()
        if ended is not None:
            self._ended(ended, events, finals)
        return events, finals

    def partial_due(self) -> bool:
        """Enough speech in the current utterance, and the interval since the last partial."""
        return (
            self._segmenter.in_speech
            and self._segmenter.speech_seconds >= self._min_speech
            and self.received_seconds >= self._next_partial_at
        )

    def take_partial(self) -> UtteranceJob | None:
        """The newest `partial_window` seconds of the utterance, when the engine will find
        enough speech in them (else None, and another try after 100 ms of audio)."""
        job = _job(
            self.utterance,
            self.received_seconds,
            self._segmenter.utterance_audio(last_seconds=self.limits.partial_window),
        )
        if job.speech_seconds < self._min_speech:
            self._next_partial_at = self.received_seconds + min(0.1, self.limits.partial_interval)
            return None
        self._next_partial_at = self.received_seconds + self.limits.partial_interval
        return job

    def split(self) -> tuple[list[dict[str, Any]], list[UtteranceJob]]:
        """Another speaker took over the utterance: it ends half a partial window ago (the
        middle of the audio that named the new speaker), and a new one begins there."""
        ended = self._segmenter.split(keep_seconds=self.limits.partial_window / 2)
        if ended is None:
            return [], []
        events: list[dict[str, Any]] = []
        finals: list[UtteranceJob] = []
        self._ended(ended, events, finals)
        events.append(self._started(SpeechStarted(at=ended.at)))
        self._next_partial_at = self.received_seconds + self.limits.partial_interval
        return events, finals

    def _started(self, segment: SpeechStarted) -> dict[str, Any]:
        self.utterance += 1
        self._utterance_start = segment.at
        self._next_partial_at = 0.0
        return {"type": "speech_start", "utterance": self.utterance, "at": _rounded(segment.at)}

    def _ended(
        self, segment: SpeechEnded, events: list[dict[str, Any]], finals: list[UtteranceJob]
    ) -> None:
        job = _job(self.utterance, segment.at, segment.waveform, self._utterance_start)
        event = {
            "type": "speech_end",
            "utterance": self.utterance,
            "at": _rounded(segment.at),
            "speech_seconds": _rounded(job.speech_seconds),
            "identified": job.speech_seconds >= self._min_speech,  # a final follows
        }
        if event["identified"]:
            finals.append(job)
        else:
            event["reason"] = "too_little_speech"
        events.append(event)


def _rounded(seconds: float) -> float:
    return round(seconds, 3)

"""One stream's audio state, without I/O: frames in; the events due now, the utterances that
ended and whether a partial result is due, out.

The connection (voiceprint.streaming.asgi) feeds every audio message to `StreamSession.push`
and runs the analysis the session asks for; keeping the rules here lets them be tested
frame by frame without a socket.

What the session does itself is cheap, per frame (resampling, the VAD of its 30 ms frames:
about 0.1 ms per 100 ms frame), and runs on the connection's event loop. What costs in
proportion to an utterance (its WAV, and the engine's count of its speech on the decoded
samples: 1-2 ms for a partial's 3 s window, about 10 ms for a 15 s utterance) is left to
`utterance_job`, which the connection runs in its worker threads, so one stream's utterance
never holds up the other streams' frames.
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


@dataclass(frozen=True)
class UtteranceAudio:
    """Audio cut from the stream (a whole utterance, or a partial's newest seconds), before
    `utterance_job` makes it a job."""

    utterance: int
    at: float
    #: 16 kHz float32.
    waveform: np.ndarray
    start: float = 0.0


def utterance_job(audio: UtteranceAudio) -> UtteranceJob:
    """The job's WAV, and its speech counted as the engine will count it: on the very samples
    the engine decodes, so that a job judged to have enough speech is never refused 40003.
    CPU work in proportion to the audio: for a worker thread, not the event loop."""
    wav = wav_encode(audio.waveform)
    speech = engine_speech_seconds(engine.decode_audio(wav))
    return UtteranceJob(
        utterance=audio.utterance, at=audio.at, wav=wav, speech_seconds=speech, start=audio.start
    )


def partial_job(audio: UtteranceAudio, *, min_speech: float) -> UtteranceJob | None:
    """A partial's job, or None when the engine would find too little speech in it (as
    `utterance_job`, for a worker thread)."""
    job = utterance_job(audio)
    return job if job.speech_seconds >= min_speech else None


@dataclass(frozen=True)
class UtteranceEnded:
    """An utterance that ended: its `speech_end` event and its final's job, once `decided`
    (for a worker thread: it makes the job)."""

    audio: UtteranceAudio
    min_speech: float

    def decided(self) -> tuple[dict[str, Any], UtteranceJob | None]:
        """The `speech_end` event, and the final's job when the utterance had enough speech."""
        job = utterance_job(self.audio)
        event = {
            "type": "speech_end",
            "utterance": job.utterance,
            "at": _rounded(job.at),
            "speech_seconds": _rounded(job.speech_seconds),
            "identified": job.speech_seconds >= self.min_speech,  # a final follows
        }
        if not event["identified"]:
            event["reason"] = "too_little_speech"
        return event, job if event["identified"] else None


#: What the session answers, in the order of the audio: the events due now (dicts), and the
#: utterances that ended, whose `speech_end` (and final) the connection has decided.
Step = dict[str, Any] | UtteranceEnded


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

    @property
    def min_speech(self) -> float:
        """Seconds of speech an utterance needs for a final, and a window for a partial."""
        return self._min_speech

    def push(self, pcm: bytes) -> list[Step]:
        """One audio message: the events due now (speech_start), and the utterances that
        ended (each gets its speech_end, and a final when identifiable)."""
        samples = self._resampler.push(pcm)
        self._received += len(pcm) // 2
        steps: list[Step] = []
        for segment in self._segmenter.push(samples):
            if isinstance(segment, SpeechStarted):
                steps.append(self._started(segment))
            else:
                steps.append(self._ended(segment))
        return steps

    def flush(self) -> list[Step]:
        """End the utterance in progress (stop, or the stream's last audio)."""
        ended = self._segmenter.flush()
        return [] if ended is None else [self._ended(ended)]

    def partial_due(self) -> bool:
        """Enough speech in the current utterance, and the interval since the last partial."""
        return (
            self._segmenter.in_speech
            and self._segmenter.speech_seconds >= self._min_speech
            and self.received_seconds >= self._next_partial_at
        )

    def take_partial(self) -> UtteranceAudio:
        """The newest `partial_window` seconds of the utterance; the next partial is due after
        `partial_interval`, unless `partial_refused` says this one had too little speech."""
        audio = UtteranceAudio(
            utterance=self.utterance,
            at=self.received_seconds,
            waveform=self._segmenter.utterance_audio(last_seconds=self.limits.partial_window),
        )
        self._next_partial_at = audio.at + self.limits.partial_interval
        return audio

    def partial_refused(self, audio: UtteranceAudio) -> None:
        """The engine finds too little speech in that partial's window (`partial_job`):
        another try after 100 ms of audio."""
        if audio.utterance == self.utterance:
            self._next_partial_at = audio.at + min(0.1, self.limits.partial_interval)

    def split(self) -> list[Step]:
        """Another speaker took over the utterance: it ends half a partial window ago (the
        middle of the audio that named the new speaker), and a new one begins there."""
        ended = self._segmenter.split(keep_seconds=self.limits.partial_window / 2)
        if ended is None:
            return []
        steps: list[Step] = [self._ended(ended), self._started(SpeechStarted(at=ended.at))]
        self._next_partial_at = self.received_seconds + self.limits.partial_interval
        return steps

    def _started(self, segment: SpeechStarted) -> dict[str, Any]:
        self.utterance += 1
        self._utterance_start = segment.at
        self._next_partial_at = 0.0
        return {"type": "speech_start", "utterance": self.utterance, "at": _rounded(segment.at)}

    def _ended(self, segment: SpeechEnded) -> UtteranceEnded:
        audio = UtteranceAudio(
            utterance=self.utterance,
            at=segment.at,
            waveform=segment.waveform,
            start=self._utterance_start,
        )
        return UtteranceEnded(audio=audio, min_speech=self._min_speech)


def _rounded(seconds: float) -> float:
    return round(seconds, 3)

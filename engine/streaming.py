"""Speech in a live stream: audio arrives a frame at a time and utterances are cut as it does.

:class:`StreamResampler` brings PCM of any rate to 16 kHz as it arrives;
:class:`UtteranceSegmenter` runs the same voice-activity detector as silence removal
(webrtcvad, 30 ms frames, smoothed over 8 frames: engine.audio) incrementally, and cuts the
stream into utterances: one starts when most of the last 8 frames are voiced, and ends after
``endpoint_seconds`` without such a majority, or at ``max_utterance_seconds``.

The offline pipeline levels quiet audio for the VAD with the recording's own peak; a stream
has no "whole recording", so the level here follows the loudest frame heard so far, decaying
by half every ``LEVEL_HALF_LIFE_SECONDS`` so that one loud bang does not deafen the detector.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
import soxr
import webrtcvad

from engine.audio import (
    SAMPLE_RATE,
    VAD_AVERAGE_WIDTH,
    VAD_FRAME,
    VAD_MAX_GAIN,
    VAD_MODE,
    VAD_TARGET_PEAK,
)

#: The loudest-frame level used to raise quiet audio halves in this time.
LEVEL_HALF_LIFE_SECONDS = 10.0
#: Audio kept before the frame where speech was recognised (the word's onset, which the
#: smoothing recognises late), as the offline dilation pads words.
PREROLL_SECONDS = 0.3


class StreamResampler:
    """PCM 16-bit mono at ``rate`` -> 16 kHz float32, chunk by chunk (soxr keeps state)."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self._stream = (
            None
            if rate == SAMPLE_RATE
            else soxr.ResampleStream(rate, SAMPLE_RATE, 1, dtype="float32", quality="HQ")
        )

    def push(self, pcm: bytes) -> np.ndarray:
        samples = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0
        if self._stream is None:
            return samples
        return self._stream.resample_chunk(samples)


@dataclass(frozen=True)
class SpeechStarted:
    #: Where the speech starts: the stream's seconds (at 16 kHz) at the start of its first
    #: frame heard as speech (it is recognised some frames later).
    at: float


@dataclass(frozen=True)
class SpeechEnded:
    at: float
    #: The utterance, from just before its onset to its last voiced frame, 16 kHz float32.
    waveform: np.ndarray
    #: Voiced seconds in it (smoothed frames, as engine.audio.speech_seconds counts them).
    speech_seconds: float
    #: "silence", "max_length", "stopped" or "speaker_change".
    reason: str


SegmentEvent = SpeechStarted | SpeechEnded


class UtteranceSegmenter:
    """Feed 16 kHz float32 audio with :meth:`push`; get the utterances' starts and ends."""

    def __init__(
        self, *, endpoint_seconds: float = 0.6, max_utterance_seconds: float = 15.0
    ) -> None:
        self._vad = webrtcvad.Vad(VAD_MODE)
        self._endpoint_frames = max(1, round(endpoint_seconds * SAMPLE_RATE / VAD_FRAME))
        self._max_frames = max(1, round(max_utterance_seconds * SAMPLE_RATE / VAD_FRAME))
        self._decay = 0.5 ** (VAD_FRAME / SAMPLE_RATE / LEVEL_HALF_LIFE_SECONDS)
        self._level = 0.0
        self._pending = np.zeros(0, dtype=np.float32)  # less than one frame
        self._recent = deque(maxlen=VAD_AVERAGE_WIDTH)  # raw VAD answers of the last frames
        preroll = round(PREROLL_SECONDS * SAMPLE_RATE / VAD_FRAME)
        #: The frames before an utterance (its onset), each with its own VAD answer.
        self._before: deque[tuple[np.ndarray, bool]] = deque(maxlen=preroll)
        self._frames: list[np.ndarray] = []  # the current utterance's frames
        self._flags: list[bool] = []  # whether each of them is voiced
        self._voiced_frames = 0
        self._last_voiced = 0  # index in _frames after the last voiced frame
        self._silent_run = 0
        self._position = 0  # frames processed since the stream began

    @property
    def in_speech(self) -> bool:
        return bool(self._frames)

    @property
    def position_seconds(self) -> float:
        return self._position * VAD_FRAME / SAMPLE_RATE

    @property
    def speech_seconds(self) -> float:
        """Voiced seconds in the current utterance so far (0 outside one)."""
        return self._voiced_frames * VAD_FRAME / SAMPLE_RATE

    def utterance_audio(self, *, last_seconds: float | None = None) -> np.ndarray:
        """The current utterance so far (or its last ``last_seconds``), 16 kHz float32."""
        frames = self._frames
        if last_seconds is not None:
            frames = frames[-max(1, round(last_seconds * SAMPLE_RATE / VAD_FRAME)) :]
        return np.concatenate(frames) if frames else np.zeros(0, dtype=np.float32)

    def push(self, samples: np.ndarray) -> list[SegmentEvent]:
        audio = np.concatenate([self._pending, np.asarray(samples, dtype=np.float32)])
        whole = len(audio) // VAD_FRAME * VAD_FRAME
        self._pending = audio[whole:]
        events: list[SegmentEvent] = []
        for start in range(0, whole, VAD_FRAME):
            event = self._frame(audio[start : start + VAD_FRAME])
            if event is not None:
                events.append(event)
        return events

    def flush(self) -> SpeechEnded | None:
        """End the current utterance now (the stream stops); None outside one."""
        return self._end("stopped") if self._frames else None

    def split(self, *, keep_seconds: float) -> SpeechEnded | None:
        """End the current utterance `keep_seconds` before now, and go on with those seconds
        as the next utterance (another speaker took over without a pause); None when the
        utterance is not longer than that."""
        keep = round(keep_seconds * SAMPLE_RATE / VAD_FRAME)
        if keep <= 0 or keep >= len(self._frames):
            return None
        head, head_flags = self._frames[:-keep], self._flags[:-keep]
        ended = SpeechEnded(
            at=(self._position - keep) * VAD_FRAME / SAMPLE_RATE,
            waveform=np.concatenate(head),
            speech_seconds=sum(head_flags) * VAD_FRAME / SAMPLE_RATE,
            reason="speaker_change",
        )
        self._frames, self._flags = self._frames[-keep:], self._flags[-keep:]
        self._voiced_frames = sum(self._flags)
        voiced_at = [index for index, flag in enumerate(self._flags) if flag]
        self._last_voiced = voiced_at[-1] + 1 if voiced_at else 0
        return ended

    def _frame(self, frame: np.ndarray) -> SegmentEvent | None:
        self._position += 1
        speech = self._is_speech(frame)
        self._recent.append(speech)
        voiced = sum(self._recent) * 2 > VAD_AVERAGE_WIDTH  # the offline smoothing's majority
        if not self._frames:
            if not voiced:
                self._before.append((frame, speech))
                return None
            # The onset's frames the detector heard as speech count as speech: the majority
            # is only reached some frames into a word.
            self._frames = [*(before for before, _ in self._before), frame]
            self._flags = [*(heard for _, heard in self._before), True]
            self._before.clear()
            self._voiced_frames, self._silent_run = sum(self._flags), 0
            self._last_voiced = len(self._frames)
            onset = self._flags.index(True)  # the first frame heard as speech
            frames_ago = len(self._frames) - 1 - onset
            return SpeechStarted(at=(self._position - frames_ago - 1) * VAD_FRAME / SAMPLE_RATE)
        self._frames.append(frame)
        self._flags.append(voiced)
        if voiced:
            self._voiced_frames += 1
            self._silent_run = 0
            self._last_voiced = len(self._frames)
        else:
            self._silent_run += 1
        if self._silent_run >= self._endpoint_frames:
            return self._end("silence")
        if len(self._frames) >= self._max_frames:
            return self._end("max_length")
        return None

    def _end(self, reason: str) -> SpeechEnded:
        # A trailing pad of silence as long as the preroll, like the offline dilation.
        keep = min(len(self._frames), self._last_voiced + self._before.maxlen)
        ended = SpeechEnded(
            at=self.position_seconds,
            waveform=np.concatenate(self._frames[:keep]),
            speech_seconds=self.speech_seconds,
            reason=reason,
        )
        self._frames, self._flags, self._voiced_frames, self._silent_run = [], [], 0, 0
        return ended

    def _is_speech(self, frame: np.ndarray) -> bool:
        peak = float(np.max(np.abs(frame)))
        self._level = max(peak, self._level * self._decay)
        gain = min(VAD_MAX_GAIN, VAD_TARGET_PEAK / self._level) if self._level > 0 else 1.0
        leveled = frame * gain if gain > 1.0 else frame
        pcm = (np.clip(leveled, -1.0, 1.0) * 32767.0).round().astype("<i2").tobytes()
        return self._vad.is_speech(pcm, SAMPLE_RATE)

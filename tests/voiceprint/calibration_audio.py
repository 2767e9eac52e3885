"""Labelled recordings for operating-point fits: LibriSpeech files cut into segments, so
each speaker has several recordings (same session: easier trials than real ones)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest

from engine.scoring import load_scorer
from tests import factories as make

#: The first LibriSpeech utterances (file-name order) of at least 11 s: one speaker each.
UTTERANCES = (
    "103-1240-0000",
    "1040-133433-0000",
    "1069-133699-0000",
    "1098-133695-0000",
    "1116-132847-0000",
    "1235-135883-0000",
)
SEGMENT_SECONDS = 3.0
#: Embedding is the slow part: most tests fit on the small set, 6 recordings.
SMALL = {"speakers": 3, "segments": 2}


def trial_counts(speakers: int = 6, segments: int = 3) -> tuple[int, int]:
    """(different-speaker, same-speaker) pairs of `recordings(speakers, segments)`:
    6 x 3 give 153 pairs, 135 and 18; 3 x 2 give 15, 12 and 3."""
    same = speakers * segments * (segments - 1) // 2
    n = speakers * segments
    return n * (n - 1) // 2 - same, same


def require_scorer(engine_name: str = "ge2e") -> None:
    if load_scorer(engine_name) is None:
        pytest.skip(
            f"engine {engine_name} has no cohort/calibration in engine/heads "
            f"(cohort-{engine_name}.npy, calibration-{engine_name}.json): nothing to fit"
        )


@cache
def recordings(speakers: int = 6, segments: int = 3) -> list[tuple[str, bytes]]:
    """(speaker, WAV bytes): `segments` consecutive 3 s segments of the first `speakers`
    utterances."""
    return [
        (utterance.split("-")[0], make.clip(make.librispeech(utterance), k * 3.5, SEGMENT_SECONDS))
        for utterance in UTTERANCES[:speakers]
        for k in range(segments)
    ]


def write_folder(folder: Path, **size: int) -> Path:
    """The recordings as files named <speaker>-<n>.wav, the way calibrate reads labels."""
    folder.mkdir(parents=True, exist_ok=True)
    for n, (speaker, audio) in enumerate(recordings(**size)):
        (folder / f"{speaker}-{n}.wav").write_bytes(audio)
    return folder

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
SEGMENTS = 3
SEGMENT_SECONDS = 3.0
#: 6 speakers x 3 segments: 153 pairs, 18 of one speaker, 135 of two.
SAME_SPEAKER_TRIALS = len(UTTERANCES) * SEGMENTS * (SEGMENTS - 1) // 2
DIFFERENT_SPEAKER_TRIALS = 153 - SAME_SPEAKER_TRIALS


def require_scorer(engine_name: str = "ge2e") -> None:
    if load_scorer(engine_name) is None:
        pytest.skip(
            f"engine {engine_name} has no cohort/calibration in engine/heads "
            f"(cohort-{engine_name}.npy, calibration-{engine_name}.json): nothing to fit"
        )


@cache
def recordings() -> list[tuple[str, bytes]]:
    """(speaker, WAV bytes): SEGMENTS consecutive segments of each utterance."""
    return [
        (utterance.split("-")[0], make.clip(make.librispeech(utterance), k * 3.5, SEGMENT_SECONDS))
        for utterance in UTTERANCES
        for k in range(SEGMENTS)
    ]


def write_folder(folder: Path) -> Path:
    """The recordings as files named <speaker>-<n>.wav, the way calibrate reads labels."""
    folder.mkdir(parents=True, exist_ok=True)
    for n, (speaker, audio) in enumerate(recordings()):
        (folder / f"{speaker}-{n}.wav").write_bytes(audio)
    return folder

"""The adaptation simulation (voiceprint.adaptation_evaluation and evaluate_adaptation) on a
handful of real LibriSpeech speakers."""

from __future__ import annotations

import dataclasses
import shutil
from io import StringIO
from pathlib import Path

import numpy as np
import pytest
from django.core.management import call_command

from engine.audio import SAMPLE_RATE
from engine.household import Condition, load_material
from engine.scoring import load_scorer
from tests.conftest import SHARED_AUDIO, require_shared
from voiceprint.adaptation import AdaptationRule
from voiceprint.adaptation_evaluation import (
    StreamMaterial,
    embed_stream_material,
    simulate_adaptation,
    split_probe_parts,
)

LIBRISPEECH = SHARED_AUDIO / "librispeech-train-clean-100"
CONDITIONS = [Condition(2.0, None), Condition(2.0, 10.0)]
#: Households of 2 among 7 speakers: 3 households, each with 1 visitor and 4 strangers.
SIZE, VISITORS, BINS = 2, 1, 2
STREAM_WINDOWS = 3
#: Everything the decision matches joins the voice, and one adaptation sample at most.
ANYTHING = AdaptationRule(
    min_probability=0.0, min_speech_seconds=0.0, min_snr_db=-100.0, max_clipping=1.0, max_samples=1
)


@pytest.fixture(scope="module")
def speech_folder(tmp_path_factory) -> Path:
    require_shared(LIBRISPEECH)
    folder = tmp_path_factory.mktemp("speech")
    longest = sorted(LIBRISPEECH.glob("*.flac"), key=lambda p: -p.stat().st_size)[:7]
    for path in longest:
        shutil.copy(path, folder / path.name)
    return folder


@pytest.fixture(scope="module")
def material(speech_folder) -> StreamMaterial:
    return embed_stream_material(
        load_material(speech_folder),
        CONDITIONS,
        engine_name="ge2e",
        stream_windows=STREAM_WINDOWS,
        held_out_windows=2,
        progress=False,
    )


def test_stream_and_held_out_probes_come_from_separate_audio(speech_folder):
    material = load_material(speech_folder)
    stream, held_out = split_probe_parts(material)
    for whole, first, second in zip(
        material.speakers, stream.speakers, held_out.speakers, strict=True
    ):
        assert first.enrollment is whole.enrollment
        assert len(first.probe_part) + len(second.probe_part) == len(whole.probe_part)
        assert len(second.probe_part) >= 2 * SAMPLE_RATE  # long files: room for a window
        np.testing.assert_array_equal(
            np.concatenate([first.probe_part, second.probe_part]), whole.probe_part
        )


def _simulate(material: StreamMaterial, name: str, rule: AdaptationRule | None):
    return simulate_adaptation(
        material,
        name=name,
        rule=rule,
        scorer=load_scorer("ge2e"),
        threshold=0.75,
        household_size=SIZE,
        visitors=VISITORS,
        bins=BINS,
    )


def test_without_adaptation_nothing_moves(material):
    result = _simulate(material, "off", None)
    assert result.added == {"right voice": 0, "wrong member": 0, "visitor": 0}
    first, *later = result.held_out
    for checkpoint in later:
        assert checkpoint.counts == first.counts
        assert checkpoint.member_best == first.member_best
    # Every stream probe of a household's members and visitor is decided once.
    assert material.embedded.refused == {}  # long readers: every window has speech
    households = len(material.embedded.labels) // SIZE
    heard = sum(c.probes for bin_counts in result.stream for c in bin_counts.values())
    assert heard == households * (SIZE + VISITORS) * STREAM_WINDOWS * len(CONDITIONS)
    members = first.total("members")
    # Clean and 10 dB 2 s probes of long LibriSpeech readers: most members accepted.
    assert members.accepted >= members.probes / 2


def test_adaptation_adds_what_matches_and_keeps_the_cap(material):
    off = _simulate(material, "off", None)
    on = _simulate(material, "on", ANYTHING)
    added = sum(on.added.values())
    assert added > 0
    # One sample per voice at most: every addition after a voice's first replaced one.
    voices = len(material.embedded.labels) // SIZE * SIZE
    assert on.replaced >= added - voices
    assert on.replaced > 0
    # Nothing adapts before the first probe, so the checkpoints before the stream agree;
    # after it the voices have moved and the held-out scores with them.
    assert on.held_out[0].member_best == off.held_out[0].member_best
    assert on.held_out[-1].member_best != off.held_out[-1].member_best


def test_a_rule_nothing_passes_is_adaptation_off(material):
    never = dataclasses.replace(ANYTHING, min_probability=1.1)
    off, on = _simulate(material, "off", None), _simulate(material, "never", never)
    assert sum(on.added.values()) == 0
    assert [c.counts for c in on.held_out] == [c.counts for c in off.held_out]


def test_the_command_reports_and_reuses_its_cache(tmp_path, speech_folder):
    folder = tmp_path / "speech"  # 4 of the speakers: 2 households of 2, each the other's visitors
    folder.mkdir()
    for path in sorted(speech_folder.iterdir())[:4]:
        shutil.copy(path, folder / path.name)
    cache, report = tmp_path / "embeddings.pkl", tmp_path / "ADAPTATION.md"
    args = [
        "evaluate_adaptation",
        str(folder),
        "--engine",
        "ge2e",
        "--part",
        "all",
        "--snrs",
        "clean,10",
        "--stream-windows",
        "2",
        "--held-out-windows",
        "1",
        "--household-size",
        str(SIZE),
        "--visitors",
        str(VISITORS),
        "--bins",
        str(BINS),
        "--no-progress",
        "--cache",
        str(cache),
        "--markdown",
        str(report),
    ]
    first = StringIO()
    call_command(*args, stdout=first)
    stamp = cache.stat().st_mtime_ns
    second = StringIO()
    call_command(*args, stdout=second)
    assert cache.stat().st_mtime_ns == stamp  # reused, not written again
    assert second.getvalue() == first.getvalue()
    text = report.read_text()
    assert text == first.getvalue().split("wrote ")[0]
    held_out_rows = [
        line
        for line in text.splitlines()
        if line.startswith(("| off | 0 |", "| off | 1 |", "| off | 2 |"))
    ]
    assert len(held_out_rows) == BINS + 1  # one per checkpoint

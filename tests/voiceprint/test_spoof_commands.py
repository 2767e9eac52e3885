"""make_spoof_material and evaluate_spoof on a few real recordings, with the real detector."""

from __future__ import annotations

import re
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from tests.conftest import SHARED_AUDIO, require_espeak, require_shared

LIBRISPEECH = "librispeech-train-clean-100"


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


@pytest.fixture(scope="module")
def shared_subset(tmp_path_factory) -> Path:
    """An audio/ folder shaped like ../shared/audio with the longest LibriSpeech recording
    (three pieces: the detector takes about a second a piece on a busy CPU)."""
    source = require_shared(SHARED_AUDIO / LIBRISPEECH)
    audio = tmp_path_factory.mktemp("audio")
    (audio / LIBRISPEECH).mkdir()
    for path in sorted(source.glob("*.flac"), key=lambda p: -p.stat().st_size)[:1]:
        (audio / LIBRISPEECH / path.name).symlink_to(path)
    return audio


@pytest.fixture(scope="module")
def material(shared_subset, tmp_path_factory) -> Path:
    require_espeak()
    out = tmp_path_factory.mktemp("material")
    printed = run("make_spoof_material", str(out), "--audio", str(shared_subset), "--no-progress")
    assert re.search(r"speakers 1, bona fide 3, espeak-ng 3, replay 3$", printed), printed
    return out


def test_material_has_the_three_kinds(material):
    for sub in ("bonafide", "spoof/espeak", "spoof/replay"):
        assert len(list((material / sub).glob("*.wav"))) == 3


def test_make_spoof_material_without_espeak_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no espeak-ng on it

    with pytest.raises(CommandError, match="apt-get install espeak-ng"):
        run("make_spoof_material", str(tmp_path / "out"))


def test_make_spoof_material_without_shared_speech(tmp_path):
    with pytest.raises(CommandError, match="no shared speech"):
        run("make_spoof_material", str(tmp_path / "out"), "--audio", str(tmp_path), "--no-espeak")


def test_evaluate_spoof_prints_eer_per_kind_and_together(material):
    printed = run(
        "evaluate_spoof", str(material), "--model", "aasist-l", "--threshold=-1e9",
        "--no-progress",
    )  # fmt: skip

    assert "model: aasist-l" in printed
    assert "bona fide falsely flagged 0.0% of 3" in printed, printed
    rows = {m[0]: m[1:] for m in re.findall(r"^\| (\w+) \| (\d+) \| ([\d.]+)% \|", printed, re.M)}
    assert set(rows) == {"espeak", "replay", "all"}
    assert rows["espeak"][0] == "3" and rows["all"][0] == "6"
    # espeak-ng's robotic speech is the easy attack: better than chance even on 3 + 3 pieces.
    assert float(rows["espeak"][1]) < 50


def test_evaluate_spoof_flags_at_the_configured_threshold(material, settings):
    settings.VOICEPRINT_SPOOF_THRESHOLD = 1e9
    printed = run("evaluate_spoof", str(material), "--model", "aasist-l", "--no-progress")

    assert "threshold 1e+09: bona fide falsely flagged 100.0% of 3" in printed, printed
    assert re.search(r"^\| espeak \| 3 \| .* \| 100\.0% \|$", printed, re.M), printed


def test_evaluate_spoof_without_spoof_folder_is_an_error(tmp_path):
    (tmp_path / "bonafide").mkdir()

    with pytest.raises(CommandError, match=r"has no spoof/"):
        run("evaluate_spoof", str(tmp_path))

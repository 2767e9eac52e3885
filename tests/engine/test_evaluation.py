"""EER, labels and folder evaluation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile

from engine.base import SpeakerEngine, l2_normalise
from engine.evaluation import (
    EvaluationReport,
    audio_files,
    compute_eer,
    evaluate_folder,
    speaker_label,
)
from tests.engine.conftest import ZH_DIR, read_speech, require_shared_audio

# --- compute_eer ------------------------------------------------------------------------------


def test_eer_of_separated_scores_is_zero_with_threshold_between():
    eer, threshold = compute_eer([0.9, 0.8, 0.7, 0.3, 0.2], [True, True, True, False, False])

    assert eer == 0.0
    assert 0.3 < threshold <= 0.7


def test_eer_of_overlapping_scores():
    # At threshold 0.5: one of three impostors accepted (0.5), one of three targets rejected.
    eer, threshold = compute_eer(
        [0.9, 0.8, 0.4, 0.5, 0.3, 0.2], [True, True, True, False, False, False]
    )

    assert eer == pytest.approx(1 / 3)
    assert 0.4 <= threshold <= 0.5


def test_eer_of_inverted_scores_is_one():
    eer, _ = compute_eer([0.1, 0.2, 0.8, 0.9], [True, True, False, False])

    assert eer == pytest.approx(1.0)


def test_eer_of_random_scores_is_about_one_half():
    rng = np.random.default_rng(0)
    eer, _ = compute_eer(rng.random(4000), rng.random(4000) < 0.5)

    assert 0.45 < eer < 0.55


@pytest.mark.parametrize("labels", [[True, True], [False, False]])
def test_eer_needs_both_kinds_of_trial(labels):
    with pytest.raises(ValueError):
        compute_eer([0.5, 0.6], labels)


# --- labels -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("relative", "label"),
    [
        ("enroll/fangjun-sr-1.wav", "fangjun"),
        ("test/leijun-test-sr-2.wav", "leijun"),
        ("test/3d-speaker/speaker1_b_cn_16k.wav", "speaker1"),
        ("103-1240-0000.flac", "103"),
        ("103/1240/103-1240-0000.flac", "103"),
        ("id10001/1zcIwhmdeo4/00001.wav", "id10001"),
        ("alone.wav", "alone"),
    ],
)
def test_speaker_label_auto(relative, label):
    root = Path("/data")
    assert speaker_label(root / relative, root) == label


def test_speaker_label_forced():
    root = Path("/data")
    path = root / "alice" / "take_1.wav"

    assert speaker_label(path, root, "folder") == "alice"
    assert speaker_label(path, root, "prefix") == "take"
    assert speaker_label(path, root) == "take"  # auto prefers the file-name prefix
    with pytest.raises(ValueError):
        speaker_label(root / "take_1.wav", root, "folder")


def test_audio_files_are_found_recursively(tmp_path):
    for name in ("a/x-1.wav", "a/b/x-2.FLAC", "y-1.ogg", "notes.txt", "y-2.mp4"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")

    found = [p.relative_to(tmp_path).as_posix() for p in audio_files(tmp_path)]

    assert found == ["a/b/x-2.FLAC", "a/x-1.wav", "y-1.ogg"]


# --- evaluate_folder --------------------------------------------------------------------------


class LoudnessEngine(SpeakerEngine):
    """A stand-in that maps each waveform to a direction set by its RMS: cheap and repeatable."""

    name, dim, source = "fake", 2, "test"

    def embed(self, waveform):
        angle = float(np.sqrt(np.mean(np.square(waveform)))) * 20
        return l2_normalise(np.array([np.cos(angle), np.sin(angle)]))


def write(path: Path, samples: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, samples, 16_000)


@pytest.fixture
def zh_three_speakers(tmp_path) -> Path:
    """The zh enroll + test files (3 speakers, 14 files), without the 3d-speaker trial."""
    require_shared_audio(ZH_DIR)
    folder = tmp_path / "zh"
    for part in ("enroll", "test"):
        for source in (ZH_DIR / part).glob("*.wav"):
            (folder / part).mkdir(parents=True, exist_ok=True)
            (folder / part / source.name).symlink_to(source)
    return folder


def test_ge2e_on_the_zh_set(zh_three_speakers):
    report = evaluate_folder(zh_three_speakers, "ge2e", progress=False)

    assert isinstance(report, EvaluationReport)
    assert (report.files_found, report.items, report.speakers) == (14, 14, 3)
    assert not report.skipped
    assert report.target_trials + report.nontarget_trials == 14 * 13 // 2
    # Measured 0 % (threshold about 0.74); random embeddings give about 50 %.
    assert report.eer <= 0.10
    assert report.mean_target_score > report.mean_nontarget_score + 0.15
    assert report.top1_queries == 14
    assert report.top1_accuracy >= 12 / 14
    text = report.as_text()
    assert "EER" in text and "top-1" in text and "ge2e" in text


def test_bad_files_are_skipped_and_counted(tmp_path, speech):
    write(tmp_path / "ann-1.wav", speech)
    write(tmp_path / "ann-2.wav", speech * 0.5)
    write(tmp_path / "bob-1.wav", speech * 0.25)
    write(tmp_path / "bob-2.wav", np.zeros(16_000 * 3, dtype=np.float32))  # silence
    (tmp_path / "bob-3.wav").write_bytes(b"not audio at all")

    report = evaluate_folder(tmp_path, LoudnessEngine(), progress=False)

    assert (report.files_found, report.items, report.speakers) == (5, 3, 2)
    assert sorted(Path(path).name for path, _ in report.skipped) == ["bob-2.wav", "bob-3.wav"]
    assert (report.target_trials, report.nontarget_trials) == (1, 2)
    assert report.top1_queries == 2  # only ann has two files
    assert "skipped" in report.as_text()


def test_segments_make_same_speaker_trials_from_single_files(tmp_path, long_speech):
    write(tmp_path / "ann-1.wav", long_speech)
    write(tmp_path / "bob-1.wav", long_speech * 0.5)

    whole = evaluate_folder(tmp_path, LoudnessEngine(), progress=False)
    cut = evaluate_folder(tmp_path, LoudnessEngine(), progress=False, segment_seconds=2.0)

    assert whole.items == 2 and whole.eer is None and whole.top1_queries == 0
    assert "n/a" in whole.as_text()
    assert cut.items > 4 and cut.speakers == 2
    assert cut.target_trials > 0 and cut.eer is not None
    assert cut.top1_queries == cut.items


def test_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError):
        evaluate_folder(tmp_path / "nowhere", LoudnessEngine(), progress=False)


def test_read_speech_helper_matches_the_shared_files():
    assert read_speech(ZH_DIR / "enroll" / "fangjun-sr-1.wav").dtype == np.float32

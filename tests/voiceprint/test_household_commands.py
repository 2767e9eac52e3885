"""build_cohort, fit_calibration and evaluate_household on a few real speakers."""

from __future__ import annotations

import shutil
from io import StringIO
from pathlib import Path

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from engine.scoring import read_scorer
from tests.conftest import SHARED_AUDIO, require_shared

LIBRISPEECH = SHARED_AUDIO / "librispeech-train-clean-100"
FAST = ["--windows", "2", "--snrs", "clean,5", "--windows-per-speaker", "1", "--no-progress"]


def _speakers(folder: Path, files: list[Path]) -> Path:
    folder.mkdir()
    for path in files:
        shutil.copy(path, folder / path.name)
    return folder


@pytest.fixture(scope="module")
def long_files() -> list[Path]:
    require_shared(LIBRISPEECH)
    files = sorted(LIBRISPEECH.glob("*.flac"), key=lambda p: -p.stat().st_size)
    return files[:14]


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def evaluate_household(folder: Path, *args: str) -> str:
    """evaluate_household on every speaker of ``folder``, households of 2, few probes."""
    return run(
        "evaluate_household",
        str(folder),
        *("--engine", "ge2e", "--part", "all", "--household-size", "2"),
        *args,
        *FAST,
    )


def test_cohort_then_calibration_make_a_usable_scorer(tmp_path, long_files):
    cohort = _speakers(tmp_path / "cohort", long_files[:4])
    fit = _speakers(tmp_path / "fit", long_files[4:10])
    heads = tmp_path / "heads"
    run(
        "build_cohort",
        str(cohort),
        "--engine",
        "ge2e",
        "--part",
        "all",
        "--no-progress",
        "--out-dir",
        str(heads),
    )
    assert np.load(heads / "cohort-ge2e.npy").shape == (12, 256)  # 4 speakers x 3 samples
    output = run(
        "fit_calibration",
        str(fit),
        "--engine",
        "ge2e",
        "--part",
        "all",
        "--out-dir",
        str(heads),
        "--top-n",
        "5",
        *FAST,
    )
    assert "threshold 0.75 -> z" in output
    scorer = read_scorer("ge2e", heads)
    assert scorer is not None and scorer.calibration.top_n == 5
    # Noise lowers the owner's scores, so the fit should trust a given z more in noise...
    # at least it must make evidence count: a higher z means a likelier owner.
    llr_low, llr_high = scorer.llr(np.array([0.0, 5.0]), speech_seconds=2.0, snr_db=20.0)
    assert llr_high > llr_low


def test_calibration_needs_a_cohort_first(tmp_path, long_files):
    fit = _speakers(tmp_path / "fit", long_files[4:8])
    with pytest.raises(CommandError, match="build_cohort"):
        run(
            "fit_calibration",
            str(fit),
            "--engine",
            "ge2e",
            "--part",
            "all",
            "--out-dir",
            str(tmp_path / "empty"),
            *FAST,
        )


def test_household_report_counts_every_probe(tmp_path, long_files):
    folder = _speakers(tmp_path / "speech", long_files[:6])
    report = tmp_path / "ACCURACY.md"
    output = evaluate_household(folder, "--markdown", str(report))
    assert report.read_text() == output.split("wrote ")[0]
    rows = [line for line in output.splitlines() if line.startswith("| raw cosine")]
    assert len(rows) == 2  # one per condition
    clean = rows[0].split("|")
    # Clean 2 s probes of well-separated LibriSpeech readers: most members accepted.
    assert float(clean[3].strip(" %")) >= 50.0
    assert "Pooled EER over all conditions" in output


def test_bad_options_are_refused(tmp_path, long_files):
    folder = _speakers(tmp_path / "speech", long_files[:3])
    with pytest.raises(CommandError, match="--snrs"):
        run("evaluate_household", str(folder), "--snrs", "loud")
    with pytest.raises(CommandError, match="not a folder"):
        run("evaluate_household", str(tmp_path / "missing"))


def test_enrollment_lengths_differ_only_in_speech(tmp_path, long_files):
    folder = _speakers(tmp_path / "speech", long_files[:5])
    output = evaluate_household(folder, "--enrollment-seconds", "1,3")
    assert "5 speakers; 0 left out of every length" in output
    for asked in ("1", "3"):
        row = next(line for line in output.splitlines() if line.startswith(f"| {asked} s |"))
        speech = float(row.split("|")[2].strip().removesuffix(" s"))
        assert float(asked) <= speech < float(asked) + 0.3  # cut by the engine's count
    assert "| 2 s, clean |" in output  # the fit over the lengths


def test_enrollment_seconds_must_be_positive(tmp_path, long_files):
    folder = _speakers(tmp_path / "speech", long_files[:3])
    with pytest.raises(CommandError, match="--enrollment-seconds"):
        run("evaluate_household", str(folder), "--enrollment-seconds", "0,2")

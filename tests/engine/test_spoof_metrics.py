"""The arithmetic of the anti-spoofing evaluation, on synthetic scores."""

from __future__ import annotations

import numpy as np
import pytest

from engine.spoof_metrics import (
    flagged_rate,
    spoof_eer,
    summarize,
    threshold_for_bonafide_rate,
)


def test_flagged_means_strictly_below_the_threshold():
    assert flagged_rate([-1.0, 0.0, 1.0, 2.0], 1.0) == 0.5
    assert flagged_rate([-1.0, 0.0, 1.0, 2.0], -5.0) == 0.0


def test_flagged_rate_of_nothing_is_an_error():
    with pytest.raises(ValueError):
        flagged_rate([], 0.0)


def test_eer_of_separated_scores_is_zero_with_threshold_between():
    eer, threshold = spoof_eer([2.0, 3.0, 4.0], [-3.0, -2.0])

    assert eer == 0.0
    assert -2.0 < threshold <= 2.0


def test_eer_of_overlapping_scores():
    # One of four bona fide (0.0) below one of four spoofs (0.5): 25% each way at the crossing.
    eer, threshold = spoof_eer([0.0, 1.0, 2.0, 3.0], [-3.0, -2.0, -1.0, 0.5])

    assert eer == pytest.approx(0.25)
    assert 0.0 <= threshold <= 1.0


def test_threshold_flags_at_most_the_rate_of_bona_fide():
    bonafide = np.arange(100, dtype=float)  # 0 .. 99

    threshold = threshold_for_bonafide_rate(bonafide, 0.035)

    # floor(3.5) = 3 may be flagged: 0, 1, 2; the threshold is the lowest accepted, 3.
    assert threshold == 3.0
    assert flagged_rate(bonafide, threshold) == 0.03
    assert flagged_rate(bonafide, np.nextafter(threshold, np.inf)) > 0.035


def test_threshold_at_rate_zero_flags_nothing():
    assert threshold_for_bonafide_rate([5.0, 1.0, 3.0], 0.0) == 1.0


@pytest.mark.parametrize("rate", [-0.1, 1.0])
def test_threshold_rate_out_of_range(rate):
    with pytest.raises(ValueError):
        threshold_for_bonafide_rate([1.0, 2.0], rate)


def test_summary_per_kind_and_all_together():
    rng = np.random.default_rng(0)
    bonafide = rng.normal(2.0, 1.0, 400)
    spoofs = {"espeak": rng.normal(-6.0, 1.0, 200), "replay": rng.normal(2.0, 1.0, 200)}

    summary = summarize(bonafide, spoofs, threshold=0.0)

    assert [k.kind for k in summary.kinds] == ["espeak", "replay", "all"]
    assert summary.bonafide_count == 400
    assert summary.bonafide_flagged == pytest.approx(0.023, abs=0.02)  # P(N(2,1) < 0)
    assert summary.kind("espeak").eer < 0.01
    assert summary.kind("espeak").flagged > 0.99
    # Replays scored like bona fide: an EER near chance, few flagged.
    assert summary.kind("replay").eer == pytest.approx(0.5, abs=0.1)
    assert summary.kind("replay").flagged < 0.05
    assert summary.kind("all").count == 400
    assert summary.kind("espeak").eer < summary.kind("all").eer < summary.kind("replay").eer


def test_summary_of_one_kind_has_no_all_row():
    summary = summarize([1.0, 2.0], {"espeak": [-1.0]}, threshold=0.0)

    assert [k.kind for k in summary.kinds] == ["espeak"]


def test_summary_without_spoofs_is_an_error():
    with pytest.raises(ValueError):
        summarize([1.0], {"espeak": []}, threshold=0.0)

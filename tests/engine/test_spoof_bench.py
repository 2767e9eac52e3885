"""make bench-spoof's choices, on synthetic scores."""

from __future__ import annotations

import numpy as np

from engine.spoof_bench import ModelResult, choose_model, choose_threshold
from engine.spoof_metrics import flagged_rate, summarize


def test_threshold_flags_at_most_3_5_percent_of_fit_bona_fide_rounded_down():
    bonafide = list(np.linspace(-10.0, 10.0, 201))  # steps of 0.1

    threshold = choose_threshold(bonafide)

    # floor(0.035 * 201) = 7 may be flagged: the 8th lowest score, -9.3, rounded down to 0.01
    # (-9.31 where the float is a hair below -9.3).
    assert -9.31 <= threshold <= -9.3
    assert flagged_rate(bonafide, threshold) <= 0.035


def result(model: str, *, espeak: float, probe_ms: float) -> ModelResult:
    rng = np.random.default_rng(0)
    bonafide = rng.normal(2.0, 1.0, 200)
    spoofs = {"espeak": rng.normal(espeak, 1.0, 200), "replay": rng.normal(1.0, 1.0, 200)}
    threshold = choose_threshold(list(bonafide))
    summary = summarize(bonafide, spoofs, threshold=threshold)
    return ModelResult(model, threshold, summary, summary, probe_ms)


def test_a_model_meeting_the_targets_wins_over_one_that_does_not():
    good = result("good", espeak=-8.0, probe_ms=50.0)
    slow = result("slow", espeak=-9.0, probe_ms=500.0)  # better EER, too slow

    assert good.meets_targets() and not slow.meets_targets()
    assert choose_model([slow, good]) is good


def test_without_a_model_meeting_the_targets_the_lower_espeak_eer_wins():
    worse = result("worse", espeak=-1.0, probe_ms=500.0)
    better = result("better", espeak=-3.0, probe_ms=500.0)

    assert choose_model([worse, better]) is better

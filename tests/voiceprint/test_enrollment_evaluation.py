"""The enrollment gate study on a few real speakers: spoilt samples read as spoilt."""

from __future__ import annotations

import math

import pytest

from engine.household import Condition, load_material
from engine.scoring import load_scorer
from tests.conftest import SHARED_AUDIO, require_shared
from voiceprint.enrollment_evaluation import (
    GOOD_ONLY,
    GatePlan,
    HouseholdSetup,
    SaturatingFit,
    fit_log,
    fit_saturating,
    gate_study,
)
from voiceprint.evaluation import ProbeSetup

LIBRISPEECH = SHARED_AUDIO / "librispeech-train-clean-100"


@pytest.fixture(scope="module")
def material(tmp_path_factory):
    require_shared(LIBRISPEECH)
    folder = tmp_path_factory.mktemp("speech")
    for path in sorted(LIBRISPEECH.glob("*.flac"), key=lambda p: -p.stat().st_size)[:5]:
        (folder / path.name).write_bytes(path.read_bytes())
    return load_material(folder)


def test_spoilt_samples_agree_less_with_the_good_ones(material):
    setup = HouseholdSetup(
        probes=ProbeSetup([Condition(2.0, None)], windows_per_speaker=1),
        scorer=load_scorer("ge2e"),
        threshold=0.75,
        household_size=2,
        engine_name="ge2e",
    )
    plan = GatePlan(short_seconds=(0.5,), snrs_db=(-5.0,), clipping=(0.1,))
    gates = gate_study(material, setup, plan=plan)
    assert gates.study.speakers == 5
    assert [v.name for v in gates.study.variants] == [
        GOOD_ONLY,
        "+ 0.5 s clean",
        "+ 2 s clean",
        "+ 2 s in babble at -5 dB",
        "+ 2 s, 10.0% clipped",
    ]
    clean, noisy = gates.added["+ 2 s clean"], gates.added["+ 2 s in babble at -5 dB"]
    clipped, short = gates.added["+ 2 s, 10.0% clipped"], gates.added["+ 0.5 s clean"]
    assert noisy.snrs_db.mean() < clean.snrs_db.mean() - 5  # engine.quality sees the babble
    assert clipped.clipping == pytest.approx(0.1, abs=0.01)
    assert short.refused == 1.0 and clean.refused == 0.0  # the service's 1 s minimum
    # A clean sample of the same voice agrees with its good samples better than the same
    # sample drowned in other talkers does.
    assert noisy.agreement < clean.agreement


def test_log_fit_reads_diminishing_returns():
    fit = fit_log([1.0, 2.0, 4.0], [0.5, 0.6, 0.7])
    assert fit.b == pytest.approx(0.1 / 0.6931, rel=1e-3)
    assert fit.gain_below(0.01) == pytest.approx(fit.b / 0.01)
    assert fit.reaching(0.8) == pytest.approx(8.0, rel=1e-3)
    assert fit.reaching(5.0) is None  # not within an hour of speech


def test_saturating_fit_finds_where_returns_run_out():
    seconds = [1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0]
    truth = SaturatingFit(plateau=0.95, d=1.5, tau=1.2)
    fit = fit_saturating(seconds, [truth.rate(s) for s in seconds])
    assert fit.plateau == pytest.approx(0.95, abs=0.01)
    assert fit.tau == pytest.approx(1.2, rel=0.02)
    # d exp(-s / tau) / tau = 0.01 at s = tau ln(d / (0.01 tau)).
    assert fit.gain_below(0.01) == pytest.approx(1.2 * math.log(1.5 / 0.012), rel=0.02)

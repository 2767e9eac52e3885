"""voiceprint.services.calibration: a tenant's operating point fitted on real speech."""

from __future__ import annotations

import pytest

from core.exceptions import ApiError, ErrorCode
from tests import factories as make
from tests.voiceprint.calibration_audio import SMALL, recordings, require_scorer, trial_counts
from voiceprint.models import OperatingPoint
from voiceprint.selectors import operating_point_get
from voiceprint.services import operating_point_delete, operating_point_fit

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


@pytest.fixture
def scored():
    require_scorer("ge2e")


def fit(tenant, target_far: float, audio=None):
    return operating_point_fit(
        tenant, recordings=audio or recordings(**SMALL), target_far=target_far, engine_name="ge2e"
    )


def test_fit_stores_the_point_with_its_trials(scored):
    tenant = make.tenant()
    audio = [*recordings(), ("nobody", make.silence())]
    result = fit(tenant, 0.05, audio)
    point = OperatingPoint.objects.get(tenant=tenant, engine_name="ge2e")
    assert result.point == point and point.target_far == 0.05
    assert result.recordings == len(recordings())
    assert [index for index, _ in result.skipped] == [len(audio) - 1]  # the silence
    assert point.speakers == 6
    assert (point.nontarget_trials, point.target_trials) == trial_counts() == (135, 18)
    # Segments of one utterance are easy trials: few of them fall under a 5% FAR point.
    assert point.measured_frr is not None and point.measured_frr <= 0.25
    assert operating_point_get(tenant, engine_name="ge2e") == pytest.approx(point.z_threshold)


def test_a_stricter_target_raises_the_threshold_and_replaces_the_point(scored):
    tenant = make.tenant()
    loose = fit(tenant, 0.5).point.z_threshold
    strict = fit(tenant, 0.1)
    assert strict.point.z_threshold > loose
    assert OperatingPoint.objects.filter(tenant=tenant).count() == 1
    assert operating_point_get(tenant, engine_name="ge2e") == pytest.approx(
        strict.point.z_threshold
    )


def test_a_target_too_small_to_measure_is_refused(scored):
    tenant = make.tenant()
    with pytest.raises(ApiError, match="12 different-speaker trials cannot measure") as exc:
        fit(tenant, 0.05)  # 12 impostor trials measure down to ~1/12
    assert exc.value.code == ErrorCode.INVALID_PARAMETER
    assert not OperatingPoint.objects.exists()


def test_one_speaker_is_not_enough_and_nothing_is_stored(scored):
    tenant = make.tenant()
    one_speaker = [r for r in recordings(**SMALL) if r[0] == "103"] + [("other", make.silence())]
    with pytest.raises(ApiError, match="at least 2 speakers, got 1") as exc:
        fit(tenant, 0.05, one_speaker)
    assert exc.value.code == ErrorCode.INVALID_PARAMETER
    assert not OperatingPoint.objects.exists()


def test_another_tenants_point_is_untouched(scored):
    acme, globex = make.tenant("acme"), make.tenant("globex")
    theirs = fit(globex, 0.1).point
    fit(acme, 0.25)
    assert operating_point_delete(acme, engine_name="ge2e")
    assert not operating_point_delete(acme, engine_name="ge2e")  # already gone
    assert operating_point_get(acme, engine_name="ge2e") is None
    kept = OperatingPoint.objects.get(tenant=globex)
    assert (kept.z_threshold, kept.target_far) == (theirs.z_threshold, 0.1)


def test_an_engine_without_scorer_says_so_before_embedding():
    tenant = make.tenant()
    # eres2net has no cohort or calibration (and no weights here): refused before any audio.
    with pytest.raises(ApiError, match="engine eres2net has no cohort/calibration"):
        operating_point_fit(
            tenant, recordings=[("a", b"x"), ("b", b"y")], target_far=0.01, engine_name="eres2net"
        )
    assert not OperatingPoint.objects.exists()


@pytest.mark.parametrize("target_far", [0.0, -0.1, 0.6])
def test_a_target_outside_0_to_half_is_invalid(target_far):
    with pytest.raises(ApiError, match="target_far"):
        operating_point_fit(make.tenant(), recordings=[], target_far=target_far)

"""`manage.py calibrate` on a folder of real speech."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from tests import factories as make
from tests.voiceprint.calibration_audio import SMALL, require_scorer, write_folder
from voiceprint.models import OperatingPoint

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


def run(*args) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("calibrate", *args, "--no-progress", stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_calibrate_fits_reports_and_resets(tmp_path):
    require_scorer("ge2e")
    tenant = make.tenant("acme")
    folder = write_folder(tmp_path / "audio", **SMALL)
    (folder / "quiet-1.wav").write_bytes(make.silence())
    out, err = run("--tenant", "acme", str(folder), "--target-far", "0.25", "--engine", "ge2e")
    point = OperatingPoint.objects.get(tenant=tenant, engine_name="ge2e")
    assert f"z >= {point.z_threshold:.3f} at a target false-accept rate of 0.25" in out
    assert "12 different-speaker and 3 same-speaker trials" in out and "1 skipped" in out
    assert "Measured false-reject rate: " in out and "genuine attempts" in out
    assert "quiet-1.wav" in err

    out, _ = run("--tenant", str(tenant.pk), "--reset", "--engine", "ge2e")
    assert "deleted" in out and not OperatingPoint.objects.exists()
    out, _ = run("--tenant", "acme", "--reset", "--engine", "ge2e")
    assert "had no operating point" in out


def test_calibrate_refuses_an_unknown_tenant_and_a_missing_folder(tmp_path):
    make.tenant("acme")
    with pytest.raises(CommandError, match="no tenant 'nope'"):
        run("--tenant", "nope", str(tmp_path))
    with pytest.raises(CommandError, match="is not a folder"):
        run("--tenant", "acme", str(tmp_path / "missing"))


def test_calibrate_with_one_speaker_says_why_and_stores_nothing(tmp_path):
    require_scorer("ge2e")
    make.tenant("acme")
    folder = tmp_path / "one"
    folder.mkdir()
    for n in range(2):
        (folder / f"anna-{n}.wav").write_bytes(
            make.clip(make.librispeech("103-1240-0000"), n * 4, 3)
        )
    with pytest.raises(CommandError, match="at least 2 speakers, got 1"):
        run("--tenant", "acme", str(folder), "--engine", "ge2e")
    assert not OperatingPoint.objects.exists()


def test_calibrate_an_engine_without_scorer_explains(tmp_path):
    make.tenant("acme")
    with pytest.raises(CommandError, match="its voices use their raw cosine thresholds"):
        run("--tenant", "acme", str(tmp_path), "--engine", "eres2net")

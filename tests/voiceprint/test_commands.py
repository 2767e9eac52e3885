"""enroll_folder, reembed and evaluate on real speech."""

import numpy as np
import pytest
from django.core.management import CommandError

from devices.services import device_create
from tests.helpers import command_output
from voiceprint.models import Voice

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


run = command_output


@pytest.fixture
def enrolled(tenant, shared_audio):
    device_create(tenant, device_id="dev-1")
    run("enroll_folder", "dev-1", str(shared_audio / "zh/enroll"), "--tenant", tenant.name)
    return tenant


def test_enroll_folder_makes_one_voice_per_speaker(enrolled, shared_audio):
    voices = {v.name: v.samples.count() for v in Voice.objects.filter(tenant=enrolled)}
    assert voices == {"fangjun": 3, "leijun": 2, "liudehua": 2}
    assert all(v.devices.get().device_id == "dev-1" for v in Voice.objects.all())
    folder = str(shared_audio / "zh/enroll")
    again = run("enroll_folder", "dev-1", folder, "--tenant", enrolled.name)
    assert again.startswith("0 voice(s) enrolled") and "3 already there" in again
    assert Voice.objects.count() == 3


def test_enroll_folder_refuses_unknown_device(tenant, shared_audio):
    with pytest.raises(CommandError):
        run("enroll_folder", "nope", str(shared_audio / "zh/enroll"), "--tenant", tenant.name)


def test_reembed_recomputes_stale_voices_and_is_idempotent(enrolled):
    voice = Voice.objects.get(name="leijun")
    original = np.asarray(voice.centroid)
    # Pretend the voice came from another engine, with a meaningless centroid.
    Voice.objects.filter(pk=voice.pk).update(engine_name="campplus", centroid=np.ones(256) / 16)
    assert "1 voice(s) re-embedded with ge2e" in run("reembed")
    voice.refresh_from_db()
    assert voice.engine_name == "ge2e"
    np.testing.assert_allclose(np.asarray(voice.centroid), original, atol=1e-4)
    assert run("reembed").startswith("0 voice(s) re-embedded")


def test_reembed_to_an_unavailable_engine_says_why(enrolled, monkeypatch, tmp_path):
    import engine

    monkeypatch.setenv("VOICEPRINT_MODEL_DIR", str(tmp_path))
    monkeypatch.setenv("VOICEPRINT_MODEL_DOWNLOAD", "0")
    engine.configure(None)
    try:
        with pytest.raises(CommandError, match="eres2net"):
            run("reembed", "--engine", "eres2net")
    finally:
        engine.configure(None)
    assert set(Voice.objects.values_list("engine_name", flat=True)) == {"ge2e"}


def test_evaluate_reports_eer_and_top1(shared_audio):
    report = run("evaluate", str(shared_audio / "zh/enroll"), "--engine", "ge2e")
    assert "EER" in report and "top-1" in report.lower()

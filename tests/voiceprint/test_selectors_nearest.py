"""voice_list_nearest: the nearest voices among candidates, by the index or exactly."""

from __future__ import annotations

import numpy as np
import pytest

from tests import factories as make
from voiceprint.models import Voice
from voiceprint.selectors import voice_list_nearest

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("exact", [True, False], ids=["exact", "index"])
def test_every_candidate_nearest_first(media_root, exact):
    owner = make.tenant()
    kitchen, hall = make.device(owner, "kitchen"), make.device(owner, "hall")
    voices = [make.speaker_voice(owner, s, devices=[kitchen]) for s in make.ZH_SPEAKERS]
    make.voice(owner, make.speech("fangjun", 2), devices=[hall])  # not a candidate
    probe = np.asarray(voices[1].centroid, dtype=np.float32)

    nearest = voice_list_nearest(
        Voice.objects.filter(bindings__device=kitchen),
        vector=probe,
        engine_name=voices[0].engine_name,
        top_k=8,
        exact=exact,
    )

    assert {v.pk for v in nearest} == {v.pk for v in voices}
    assert nearest[0].pk == voices[1].pk and nearest[0].distance == pytest.approx(0, abs=1e-5)
    distances = [v.distance for v in nearest]
    assert distances == sorted(distances)

"""voice_list_nearest: the nearest voices among candidates, by the index or exactly."""

from __future__ import annotations

import numpy as np
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests import factories as make
from voiceprint.models import Voice
from voiceprint.selectors import voice_list_nearest

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("exact", [True, False], ids=["exact", "index"])
def test_every_candidate_nearest_first(media_root, settings, exact):
    settings.VOICEPRINT_EXACT_SEARCH_MAX_VOICES = 0  # the index even for three voices
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


@pytest.mark.parametrize(
    ("max_exact", "searched_exactly"), [(2, False), (3, True)], ids=["index", "exact"]
)
def test_a_small_gallery_is_searched_exactly_a_bigger_one_by_the_index(
    media_root, settings, max_exact, searched_exactly
):
    settings.VOICEPRINT_EXACT_SEARCH_MAX_VOICES = max_exact
    settings.VOICEPRINT_HNSW_EF_SEARCH = 123
    owner = make.tenant()
    voices = [make.speaker_voice(owner, s) for s in make.ZH_SPEAKERS]  # three voices
    probe = np.asarray(voices[2].centroid, dtype=np.float32)

    with CaptureQueriesContext(connection) as queries:
        nearest = voice_list_nearest(
            Voice.objects.filter(tenant=owner),
            vector=probe,
            engine_name=voices[0].engine_name,
            top_k=2,
        )

    sent = " ".join(query["sql"] for query in queries.captured_queries)
    assert ("'hnsw.ef_search', '123'" in sent) is not searched_exactly
    assert nearest[0].pk == voices[2].pk and len(nearest) == 2
    # The size check stops at limit + 1 rows: it must not sort the gallery first.
    (size_check,) = [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"]]
    assert "ORDER BY" not in size_check


def test_an_exact_search_is_one_statement_the_index_cannot_serve(media_root):
    owner = make.tenant()
    kitchen = make.device(owner, "kitchen")
    voices = [make.speaker_voice(owner, s, devices=[kitchen]) for s in make.ZH_SPEAKERS]
    probe = np.asarray(voices[0].centroid, dtype=np.float32)

    with CaptureQueriesContext(connection) as queries:
        nearest = voice_list_nearest(
            Voice.objects.filter(bindings__device=kitchen),
            vector=probe,
            engine_name=voices[0].engine_name,
            top_k=8,
            exact=True,
        )

    (search,) = queries.captured_queries  # no transaction, no planner setting
    with connection.cursor() as cursor:  # the planner would rather use the index
        cursor.execute("SET LOCAL enable_seqscan = off")
        assert "hnsw" not in _plan(search["sql"])
    assert nearest[0].pk == voices[0].pk


def _plan(sql: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + sql)
        return "\n".join(row[0] for row in cursor.fetchall())

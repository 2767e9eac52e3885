"""Plumbing of `make bench-bulk` (voiceprint.bulk_bench) on a tiny run; its timings are the
benchmark's business, not asserted here."""

import pytest

from voiceprint.bulk_bench import bulk_bench_markdown, bulk_bench_run
from voiceprint.models import Voice
from voiceprint.services.vector_index import centroid_index_exists


@pytest.mark.django_db(transaction=True)  # the bench vacuums, which no transaction allows
def test_a_tiny_bench_reports_both_paths_on_a_growing_table():
    runs = bulk_bench_run(voices=12, rounds=2, progress=lambda line: None)

    assert [(r.path, r.before) for r in runs] == [
        ("row by row", 0), ("fast path", 0), ("row by row", 12), ("fast path", 12),
    ]  # fmt: skip
    assert all(r.seconds > 0 for r in runs)
    assert Voice.objects.count() == 24 and centroid_index_exists(256)
    table = bulk_bench_markdown(runs, voices=12)
    assert table.count("\n| 0 |") == 1 and table.count("\n| 12 |") == 1

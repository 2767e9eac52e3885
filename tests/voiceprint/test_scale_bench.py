"""`manage.py bench_scale`: a tiny run, for the plumbing only (the numbers are the
benchmark's, `make bench-scale`, never a test's)."""

from __future__ import annotations

import io
import os

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from utilities.markdown_sections import replace_section


def _table(text: str) -> list[list[str]]:
    rows = [line.strip("|").split("|") for line in text.splitlines() if line.startswith("| ")]
    return [[cell.strip() for cell in row] for row in rows if len(row) == 7]


def test_a_tiny_run_reports_every_query_type_and_drops_its_database(
    django_db_blocker, settings, tmp_path
):
    settings.VOICEPRINT_HNSW_EF_SEARCH = 40
    report = tmp_path / "BENCHMARKS.md"
    replace_section(report, "engines", "other benchmark's table")
    database = f"bench_scale_test_{os.getpid()}"
    out = io.StringIO()

    with django_db_blocker.unblock():
        call_command(
            "bench_scale", "--voices", "600", "--small-tenants", "6", "--medium-tenants", "40",
            "--devices", "4", "--queries", "12", "--ef-search", "40,100", "--insert-sample",
            "20", "--database", database, "--markdown", str(report), "--no-progress",
            stdout=out, stderr=io.StringIO(),
        )  # fmt: skip
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database])
            left = cursor.fetchall()
        connection.close()

    text = report.read_text()
    assert "other benchmark's table" in text and "<!-- begin scale -->" in text
    rows = {(row[0], row[1]): row for row in _table(text)[1:]}
    assert set(rows) == {
        ("store identify, big tenant", "exact"),
        ("store identify, big tenant", "routed (settings: ef_search 40)"),
        ("store identify, big tenant", "index, ef_search 40"),
        ("store identify, big tenant", "index, ef_search 100"),
        ("store identify, small tenant", "exact"),
        ("store identify, small tenant", "routed (settings: ef_search 40)"),
        ("store identify, small tenant", "index forced, ef_search 40"),
        ("store identify, medium tenant", "exact"),
        ("store identify, medium tenant", "routed (settings: ef_search 40)"),
        ("store identify, medium tenant", "index forced, ef_search 40"),
        ("device identify, big tenant", "exact"),
        ("device identify, small tenant", "exact"),
    }
    # Exact search, and small galleries as the service routes them, are always right; a
    # device answers all of its four voices.
    for key, row in rows.items():
        if key[1] == "exact" or (key[1].startswith("routed") and "big" not in key[0]):
            assert float(row[-1]) == 1.0, key
        assert float(row[3]) > 0, key
    assert "600 in the big tenant" in text
    assert left == []  # dropped at the end


def test_an_engine_without_a_fitted_distribution_is_refused():
    with pytest.raises(CommandError, match="fit_scale_distribution"):
        call_command("bench_scale", "--engine", "campplus", "--voices", "100")

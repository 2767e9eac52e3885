import pytest
from django.db import connection

from core.scratch_database import scratch_database


@pytest.mark.parametrize("name", ["voiceprint", "postgres", "scratch"])
def test_a_database_not_named_for_benchmarks_is_refused(name):
    with pytest.raises(ValueError, match="needs 'bench'"), scratch_database(name):
        pass


@pytest.mark.django_db(transaction=True)
def test_the_scratch_database_is_migrated_then_dropped_and_the_configured_one_restored():
    configured = connection.settings_dict["NAME"]
    with scratch_database("voiceprint_bench_scratch_test"):
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_database(), to_regclass('voiceprint_voice')")
            assert cursor.fetchone() == ("voiceprint_bench_scratch_test", "voiceprint_voice")
    assert connection.settings_dict["NAME"] == configured
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = 'voiceprint_bench_scratch_test'")
        assert cursor.fetchone() is None

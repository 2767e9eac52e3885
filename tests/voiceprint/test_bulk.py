"""Bulk runs (voiceprint.services.bulk): the fast path (index dropped during, built after,
also after a failure), import_embeddings (formats, validation, resume, tenants), and what
the rest of the app does with voices imported without audio.

VOICEPRINT_BULK_INDEX_THRESHOLD is lowered so that a few dozen voices take the fast path.
The voices that must be found are real GE2E embeddings of the shared speech; the crowd
around them is random unit vectors.
"""

from __future__ import annotations

import io
import json
import zipfile
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from django.core.management import CommandError

from audit.models import AuditEvent
from devices.services import device_create
from engine.base import l2_normalise
from tenancy.services import tenant_create
from tests.conftest import SHARED_AUDIO
from tests.helpers import VP, command_output, envelope
from voiceprint.embedding import compute_embedding
from voiceprint.embedding_files import EmbeddingRow
from voiceprint.models import Voice
from voiceprint.services import bulk
from voiceprint.services.vector_index import centroid_index_drop, centroid_index_exists
from voiceprint.voice_api.services import store_identify

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

SPEAKERS = ("fangjun", "leijun", "liudehua")
DIM = 256
CROWD = 30


@cache
def speaker_embedding(speaker: str) -> list[float]:
    """The mean GE2E embedding of the speaker's enrollment files (as another system would
    have stored it)."""
    files = sorted((SHARED_AUDIO / "zh" / "enroll").glob(f"{speaker}-sr-*.wav"))
    vectors = [compute_embedding(path.read_bytes(), "ge2e").vector for path in files]
    return l2_normalise(np.mean(vectors, axis=0)).tolist()


def crowd(n: int = CROWD, *, seed: int = 0) -> list[tuple[str, list[float]]]:
    vectors = np.random.default_rng(seed).standard_normal((n, DIM))
    return [(f"person-{i:03d}", vector.tolist()) for i, vector in enumerate(vectors)]


def rows(shared_audio: Path, n: int = CROWD) -> list[EmbeddingRow]:
    named = [(s, speaker_embedding(s)) for s in SPEAKERS] + crowd(n)
    return [
        EmbeddingRow(line=i, name=name, vector=np.asarray(vector))
        for i, (name, vector) in enumerate(named, start=1)
    ]


def write_jsonl(path: Path, items: list[dict]) -> Path:
    path.write_text("".join(json.dumps(item) + "\n" for item in items))
    return path


run = command_output


@pytest.fixture
def low_threshold(settings, monkeypatch):
    """The fast path from 10 rows on, written 10 rows a batch."""
    settings.VOICEPRINT_BULK_INDEX_THRESHOLD = 10
    monkeypatch.setattr(bulk, "IMPORT_BATCH", 10)


def identify(tenant, speaker: str, store: str = "default") -> list[str]:
    audio = (SHARED_AUDIO / "zh" / "test" / f"{speaker}-test-sr-1.wav").read_bytes()
    result = store_identify(
        tenant, audio=audio, store=store, engine_name="ge2e", top_k=3, threshold=None
    )
    return [match.voice.name for match in result.matches]


def import_watching_the_index(tenant, rows: list[EmbeddingRow]) -> tuple[bulk.ImportResult, list]:
    """Import `rows`; also whether the index existed each time a batch was written."""
    seen_during = []
    result = bulk.voices_import(
        tenant,
        rows=rows,
        engine_name="ge2e",
        store="default",
        progress=lambda n: seen_during.append(centroid_index_exists(DIM)),
    )
    return result, seen_during


def test_fast_path_drops_the_index_during_the_import_and_builds_it_after(
    tenant, shared_audio, low_threshold
):
    result, seen_during = import_watching_the_index(tenant, rows(shared_audio))

    assert result.fast_path and (result.imported, result.skipped) == (3 + CROWD, 0)
    assert seen_during == [False] * 4  # 33 rows in batches of 10
    assert centroid_index_exists(DIM)
    # The imported embeddings identify their speakers among the crowd.
    for speaker in SPEAKERS:
        assert identify(tenant, speaker)[0] == speaker
    event = AuditEvent.objects.get(action="voice.import")
    assert event.details == {"engine": "ge2e", "imported": 33, "skipped": 0}


def test_a_small_import_keeps_the_index(tenant, shared_audio, settings):
    settings.VOICEPRINT_BULK_INDEX_THRESHOLD = 1000
    result, seen_during = import_watching_the_index(tenant, rows(shared_audio))
    assert not result.fast_path and seen_during == [True]
    assert identify(tenant, "leijun")[0] == "leijun"


@pytest.mark.django_db(transaction=True)  # committed batches, as in production
def test_index_is_built_again_after_a_failure_and_a_new_run_resumes(
    tenant, shared_audio, low_threshold
):
    batches = []

    def interrupted(n: int) -> None:
        batches.append(n)
        if len(batches) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        bulk.voices_import(
            tenant, rows=rows(shared_audio), engine_name="ge2e", store="default",
            progress=interrupted,
        )  # fmt: skip

    assert centroid_index_exists(DIM)
    assert Voice.objects.filter(tenant=tenant).count() == 20  # two whole batches
    failed = AuditEvent.objects.get(action="voice.import")
    assert failed.outcome == "failed" and failed.details["imported"] == 20

    result = bulk.voices_import(
        tenant, rows=rows(shared_audio), engine_name="ge2e", store="default"
    )
    assert (result.imported, result.skipped) == (13, 20)
    assert Voice.objects.filter(tenant=tenant).count() == 33
    assert centroid_index_exists(DIM)


def test_a_run_small_beside_the_voices_already_indexed_keeps_the_index(
    tenant, shared_audio, low_threshold, settings
):
    bulk.voices_import(tenant, rows=rows(shared_audio), engine_name="ge2e", store="default")
    settings.VOICEPRINT_BULK_INDEX_THRESHOLD = 5
    # 8 rows reach the threshold, but a build over 33 + 8 would cost more than inserting 8:
    # they are fewer than REBUILD_SHARE of the 33 already there.
    more = [
        EmbeddingRow(line=i, name=f"more-{i}", vector=np.asarray(vector))
        for i, (_, vector) in enumerate(crowd(8, seed=2), start=1)
    ]
    result, seen_during = import_watching_the_index(tenant, more)
    assert result.imported == 8 and not result.fast_path and seen_during == [True]
    assert bulk.bulk_is_large(9, indexed=33)


def test_a_missing_index_left_by_a_killed_run_is_built_by_the_next_run(tenant, shared_audio):
    centroid_index_drop(DIM)
    result = bulk.voices_import(
        tenant, rows=rows(shared_audio, n=2), engine_name="ge2e", store="default"
    )
    assert not result.fast_path and centroid_index_exists(DIM)


def test_import_command_reads_json_lines_and_says_what_it_skipped(
    tenant, shared_audio, tmp_path, low_threshold
):
    items = [{"name": s, "embedding": speaker_embedding(s)} for s in SPEAKERS]
    items += [{"name": n, "embedding": v, "labels": {"source": "old"}} for n, v in crowd()]
    items.append({"name": "leijun", "embedding": speaker_embedding("leijun"), "store": "office"})
    path = write_jsonl(tmp_path / "voices.jsonl", items)

    output = run("import_embeddings", str(path), "--tenant", tenant.name, "--engine", "ge2e")
    assert "fast path" in output and "exact, slower" in output
    assert "34 voice(s) imported into acme (ge2e), 0 already there" in output
    assert Voice.objects.get(name="person-000").labels == {"source": "old"}
    assert identify(tenant, "leijun", store="office") == ["leijun"]

    again = run("import_embeddings", str(path), "--tenant", tenant.name, "--engine", "ge2e")
    assert "0 voice(s) imported into acme (ge2e), 34 already there (skipped)" in again
    assert centroid_index_exists(DIM)


def test_import_command_reads_numpy(tenant, shared_audio, tmp_path):
    names = ["fangjun", "leijun"]
    embeddings = np.array([speaker_embedding(n) for n in names], dtype=np.float32) * 3
    np.savez(tmp_path / "voices.npz", names=np.array(names), embeddings=embeddings)
    output = run(
        "import_embeddings", str(tmp_path / "voices.npz"), "--tenant", tenant.name,
        "--engine", "ge2e", "--store", "npz",
    )  # fmt: skip
    assert "2 voice(s) imported" in output
    np.save(tmp_path / "voices.npy", embeddings)
    (tmp_path / "names.txt").write_text("fangjun\nleijun\n")
    output = run(
        "import_embeddings", str(tmp_path / "voices.npy"), "--names",
        str(tmp_path / "names.txt"), "--tenant", tenant.name, "--engine", "ge2e",
    )  # fmt: skip
    assert "2 voice(s) imported" in output
    centroid = np.asarray(Voice.objects.get(store="npz", name="fangjun").centroid)
    assert abs(np.linalg.norm(centroid) - 1) < 1e-5  # normalised
    assert identify(tenant, "fangjun", store="npz")[0] == "fangjun"


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"name": "x", "embedding": [0.1] * 192}, "line 3: 192 values, the engine's embeddings"),
        ({"name": "x", "embedding": [0.0] * DIM}, "line 3: the embedding is all zeros"),
        ({"name": "x", "embedding": [1e400] + [0.1] * 255}, "line 3: not a finite number"),
        ({"name": "person-000", "embedding": [0.1] * DIM}, "line 3: name 'person-000' repeated"),
        ({"name": "", "embedding": [0.1] * DIM}, "line 3: no name"),
        ({"name": "x", "embedding": "abc"}, "line 3: embedding is not a list of numbers"),
        ({"name": "x", "embedding": [0.1] * DIM, "voice": 1}, "line 3: unknown field(s) voice"),
    ],
)  # fmt: skip
def test_a_bad_line_is_named_and_nothing_is_stored(tenant, tmp_path, bad, message):
    items = [{"name": n, "embedding": v} for n, v in crowd(2)] + [bad] + crowd_items(4)
    path = write_jsonl(tmp_path / "voices.jsonl", items)
    with pytest.raises(CommandError, match="nothing imported") as error:
        run("import_embeddings", str(path), "--tenant", tenant.name, "--engine", "ge2e")
    assert message in str(error.value)
    assert not Voice.objects.exists() and not AuditEvent.objects.filter(action="voice.import")


def crowd_items(n: int) -> list[dict]:
    return [{"name": f"later-{i}", "embedding": v} for i, (_, v) in enumerate(crowd(n, seed=1))]


def test_a_line_that_is_not_json_is_named(tenant, tmp_path):
    path = tmp_path / "voices.jsonl"
    path.write_text(json.dumps({"name": "a", "embedding": [0.1] * DIM}) + "\n\n{oops\n")
    with pytest.raises(CommandError, match="line 3: not JSON"):
        run("import_embeddings", str(path), "--tenant", tenant.name, "--engine", "ge2e")
    assert not Voice.objects.exists()


def test_an_unknown_engine_is_refused(tenant, tmp_path):
    path = write_jsonl(tmp_path / "v.jsonl", [{"name": "a", "embedding": [0.1] * DIM}])
    with pytest.raises(CommandError, match="nope"):
        run("import_embeddings", str(path), "--tenant", tenant.name, "--engine", "nope")
    assert not Voice.objects.exists()


def test_tenants_are_isolated(tenant, shared_audio, low_threshold):
    other, _ = tenant_create(name="globex")
    bulk.voices_import(tenant, rows=rows(shared_audio), engine_name="ge2e", store="default")
    # The same names in another tenant are not "already there".
    result = bulk.voices_import(
        other, rows=rows(shared_audio, n=0)[:1], engine_name="ge2e", store="default"
    )
    assert (result.imported, result.skipped) == (1, 0)
    assert identify(other, "leijun") == ["fangjun"]  # only globex's one voice
    assert set(Voice.objects.filter(tenant=other).values_list("name", flat=True)) == {"fangjun"}


def test_an_imported_voice_has_no_audio_and_says_so(api, tenant, shared_audio, settings):
    settings.VOICEPRINT_AUDIO_RETENTION_DAYS = 30
    bulk.voices_import(tenant, rows=rows(shared_audio, n=0), engine_name="ge2e", store="default")
    voice = Voice.objects.get(name="fangjun")
    assert voice.samples.get().imported

    detail = envelope(api.get(VP + f"voices/{voice.voice_id}"))
    assert detail["voice_id"] == voice.voice_id
    samples = envelope(api.get(VP + f"voices/{voice.voice_id}/samples"))
    assert len(samples) == 1 and samples[0]["audio_purged_at"] is not None
    response = api.get(VP + f"voices/{voice.voice_id}/audio", {"sample": "0"})
    envelope(response, 40400)
    assert response.json()["msg"] == "sample has no audio: it was imported as an embedding"
    response = api.get(VP + f"voices/{voice.voice_id}/export")
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    assert sorted(archive.namelist()) == ["audit.jsonl", "voice.json"]
    assert json.loads(archive.read("voice.json"))["samples"][0]["file"] is None
    # The retention never purges it again.
    assert run("purge_audio").startswith("0 sample(s)")

    Voice.objects.filter(pk=voice.pk).update(engine_name="campplus")
    output = run("reembed", "--engine", "ge2e")
    assert f"voice {voice.voice_id}: no audio to re-embed for 1 of its 1 sample(s)" in output
    assert "0 failed, 1 not recomputable (no audio)" in output


def test_enroll_folder_and_reembed_take_the_fast_path(tenant, shared_audio, settings):
    settings.VOICEPRINT_BULK_INDEX_THRESHOLD = 3
    device_create(tenant, device_id="dev-1")
    folder = str(shared_audio / "zh/enroll")
    output = run("enroll_folder", "dev-1", folder, "--tenant", tenant.name)
    assert "fast path (7 rows" in output and "3 voice(s) enrolled" in output
    assert centroid_index_exists(DIM)
    # A speaker interrupted after its first file is listed as incomplete.
    leijun = Voice.objects.get(name="leijun")
    leijun.samples.order_by("-pk").first().delete()
    again = run("enroll_folder", "dev-1", folder, "--tenant", tenant.name)
    assert "fast path" not in again and "fewer samples than files" in again and "leijun" in again

    Voice.objects.exclude(name="leijun").update(engine_name="campplus")
    output = run("reembed", "--engine", "ge2e")
    assert "1 already on ge2e (skipped)" in output
    assert "fast path" not in output and "2 voice(s) re-embedded" in output
    settings.VOICEPRINT_BULK_INDEX_THRESHOLD = 1
    Voice.objects.update(engine_name="campplus")
    output = run("reembed", "--engine", "ge2e")
    assert "fast path (3 rows" in output and "3 voice(s) re-embedded" in output
    assert centroid_index_exists(DIM)
    assert identify(tenant, "liudehua")[0] == "liudehua"

"""`make bench-scale`: the nearest-voice queries over a million voices, in a database of its own.

One big tenant with `voices` voices, 1,000 small tenants (a few to a few hundred voices),
a few medium tenants (to see where exact search stops being as fast as the index) and
devices with four bound voices each. Voices and probes are drawn from the engine's fitted
embedding distribution (engine.scale_distribution), never isotropic random vectors, on which
an HNSW graph's recall is nothing like real.

The voices are loaded by COPY with the centroid index dropped, then the index is built once
(vector_index), as the bulk loads do; a sample of voices is then inserted row by row into the
indexed table, as enrollment does. Every query goes through the service's selector
(voiceprint.selectors.voice_list_nearest) with the service's candidates, and is compared with
the exact answer of the same selector: recall@1 counts a query right when the top voice is
the exact top voice, or scores the same within 1e-6 (a tie).
"""

from __future__ import annotations

import datetime
import functools
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db import connection
from django.test.utils import override_settings

from devices.models import Device
from engine.scale_distribution import ScaleDistribution
from tenancy.models import Tenant
from tenancy.scoping import owned
from utilities.machine import cpu_model, load_average
from voiceprint.models import DEFAULT_STORE, Voice, VoiceBinding, VoiceStatus
from voiceprint.selectors import voice_list_nearest
from voiceprint.services import vector_index
from voiceprint.services.recognition import SCORED_VOICES

#: Small tenants' sizes are log-uniform between these (a shop, a household, a small office).
SMALL_TENANT_VOICES = (3, 300)
#: Voices a device has bound (a family), and what store identify returns (its API default).
VOICES_PER_DEVICE = 4
STORE_TOP_K = 5
#: Enrollment samples averaged into a voice's centroid.
ENROLLMENT_SAMPLES = 3
COPY_CHUNK = 20_000
TIE = 1e-6
VOICE_COLUMNS = (
    "tenant_id, voice_id, name, status, threshold, store, labels, engine_name, dim, centroid, "
    "adaptation_share, created_at, updated_at"
)
COPY_TYPES = [
    "bigint", "text", "text", "text", "double precision", "text", "jsonb", "text", "smallint",
    "vector", "double precision", "timestamptz", "timestamptz",
]  # fmt: skip

Progress = Callable[[str], None]


@dataclass(frozen=True)
class ScaleParams:
    voices: int = 1_000_000
    small_tenants: int = 1_000
    medium_tenants: tuple[int, ...] = (1_000, 3_000, 10_000)
    devices: int = 200
    queries: int = 200
    ef_search: tuple[int, ...] = (40, 100, 200)
    m: int | None = None
    ef_construction: int | None = None
    #: Voices inserted one by one into the indexed table (part of `voices`).
    insert_sample: int = 1_000
    work_mem: str = "4GB"
    seed: int = 0


@dataclass
class QueryRow:
    query: str
    mode: str
    #: Voices among which the query searched (per query; a range for many tenants).
    gallery: str
    p50_ms: float
    p95_ms: float
    #: p50 of the SQL statements' time only.
    sql_p50_ms: float
    recall_at_1: float


@dataclass
class ScaleReport:
    params: ScaleParams
    engine: str
    total_voices: int = 0
    load_seconds: float = 0.0
    build_seconds: float = 0.0
    m: int = 0
    ef_construction: int = 0
    insert_rate: float = 0.0
    index_mib: float = 0.0
    table_mib: float = 0.0
    server_rss_mib: float = 0.0
    server_pss_mib: float = 0.0
    rows: list[QueryRow] = field(default_factory=list)
    started: str = ""
    machine: str = ""
    server: str = ""


@dataclass
class _Probe:
    tenant: Tenant
    vector: np.ndarray
    device: Device | None = None


def scale_bench_run(
    distribution: ScaleDistribution, params: ScaleParams, progress: Progress
) -> ScaleReport:
    """Load, index and query (the current default database must be a scratch one)."""
    report = ScaleReport(
        params=params,
        engine=distribution.engine,
        started=datetime.datetime.now(datetime.UTC).isoformat(timespec="minutes"),
        machine=_machine(),
    )
    rng = np.random.default_rng(params.seed)
    dim = distribution.dim
    report.server = _server_versions()
    vector_index.centroid_index_drop(dim)
    big, small, medium = _tenants_create(params)
    started = time.perf_counter()
    loaded = _load(big, [*small, *medium], distribution, params, rng, progress)
    report.load_seconds = time.perf_counter() - started
    progress(f"loaded {_count():,} voices in {report.load_seconds:.0f} s; analysing")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE voiceprint_voice")

    progress("building the HNSW index (long at a million voices)")
    report.m = params.m or settings.VOICEPRINT_HNSW_M
    report.ef_construction = params.ef_construction or settings.VOICEPRINT_HNSW_EF_CONSTRUCTION
    started = time.perf_counter()
    vector_index.centroid_index_build(
        dim, m=report.m, ef_construction=report.ef_construction, work_mem=params.work_mem
    )
    report.build_seconds = time.perf_counter() - started
    progress(f"index built in {report.build_seconds:.0f} s")

    report.insert_rate = _insert_row_by_row(big, params, distribution, rng)
    progress(f"row-by-row insert into the indexed table: {report.insert_rate:.0f} voices/s")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE voiceprint_voice")
        cursor.execute("SELECT pg_relation_size(%s)", [vector_index.index_name(dim)])
        report.index_mib = cursor.fetchone()[0] / 2**20
        cursor.execute("SELECT pg_total_relation_size('voiceprint_voice')")
        report.table_mib = cursor.fetchone()[0] / 2**20
    report.total_voices = _count()
    report.rows = _query_all(big, small, medium, loaded, distribution, params, progress)
    report.server_rss_mib, report.server_pss_mib = _server_memory_mib()
    return report


def _query_all(big, small, medium, loaded: _Loaded, distribution, params, progress):
    """Every query type's rows: store identify in the big, small and medium tenants, and
    device identify."""
    probe_rng = np.random.default_rng(params.seed + 1)
    big_ids, big_means, others = loaded.big_ids, loaded.big_means, loaded.others
    devices = _devices_create(big, big_ids, others, params, probe_rng)
    store_probes = [
        _Probe(big, probe) for probe in distribution.probes(big_means[: params.queries], probe_rng)
    ]
    small_probes = _small_probes(others[: len(small)], params.queries, distribution, probe_rng)
    device_probes = _device_probes(devices, big_means, others, distribution, probe_rng)
    engine = distribution.engine

    progress(f"querying: {len(store_probes)} store probes x {len(params.ef_search)} ef_search")
    rows: list[QueryRow] = []
    store = functools.partial(_query_rows, params=params, engine=engine, top_k=STORE_TOP_K)
    rows += store("store identify, big tenant", f"{params.voices:,}", store_probes)
    sizes = [size for _, size in small]
    small_gallery = f"{min(sizes)}-{max(sizes)}" if sizes else "0"
    rows += store("store identify, small tenant", small_gallery, small_probes, ef_sweep=False)
    for n, (_, size) in enumerate(medium):
        item = others[len(small) + n]
        probes = _small_probes([item], max(params.queries // 4, 1), distribution, probe_rng)
        rows += store("store identify, medium tenant", f"{size:,}", probes, ef_sweep=False)
    progress("querying devices")
    rows += _device_rows(device_probes, engine)
    return rows


# --- loading --------------------------------------------------------------------------


@dataclass
class _Loaded:
    """What the queries need to know of the loaded voices: the big tenant's watched voices
    (the first `queries` are asked for by store identify, the next ones are bound to
    devices) with their speakers' means, and every other tenant's voices and means."""

    big_ids: list[str]
    big_means: np.ndarray
    others: list[tuple[Tenant, list[str], np.ndarray]]


def _load(big, others_sizes, distribution, params, rng, progress) -> _Loaded:
    """COPY the big tenant's voices but the insert sample, in chunks, then the others'."""
    raw = _raw_connection()
    total_big = params.voices - params.insert_sample
    watched = rng.choice(
        total_big,
        size=min(params.queries + params.devices * VOICES_PER_DEVICE, params.voices // 2),
        replace=False,
    )
    watched_means: dict[int, np.ndarray] = {}
    loaded = 0
    while loaded < total_big:
        count = min(COPY_CHUNK, total_big - loaded)
        means = distribution.speaker_means(rng, count)
        centroids = distribution.centroids(means, rng, samples=ENROLLMENT_SAMPLES)
        for index in watched[(watched >= loaded) & (watched < loaded + count)]:
            watched_means[int(index)] = means[index - loaded]
        voice_ids = [f"b{loaded + i:023x}" for i in range(count)]
        _copy(raw, [big.pk] * count, voice_ids, centroids, distribution)
        loaded += count
        progress(f"loaded {loaded:,} / {total_big:,} voices of the big tenant")
    others: list[tuple[Tenant, list[str], np.ndarray]] = []
    for tenant, size in others_sizes:
        means = distribution.speaker_means(rng, size)
        others.append((tenant, [f"t{tenant.pk:08x}{i:015x}" for i in range(size)], means))
    _copy(
        raw,
        [tenant.pk for tenant, ids, _ in others for _ in ids],
        [voice_id for _, ids, _ in others for voice_id in ids],
        np.concatenate([distribution.centroids(means, rng) for _, _, means in others]),
        distribution,
    )
    return _Loaded(
        big_ids=[f"b{int(i):023x}" for i in watched],
        big_means=np.stack([watched_means[int(i)] for i in watched]),
        others=others,
    )


def _raw_connection():
    """The psycopg connection under Django's, with pgvector's types registered (COPY)."""
    from pgvector.psycopg import register_vector

    connection.ensure_connection()
    raw = connection.connection
    register_vector(raw)
    return raw


def _tenants_create(params: ScaleParams):
    rng = np.random.default_rng(params.seed + 2)
    big = Tenant.objects.create(name="bench-big")
    low, high = np.log(SMALL_TENANT_VOICES[0]), np.log(SMALL_TENANT_VOICES[1])
    sizes = np.exp(rng.uniform(low, high, params.small_tenants)).astype(int)
    small_tenants = Tenant.objects.bulk_create(
        [Tenant(name=f"bench-small-{i}") for i in range(params.small_tenants)]
    )
    medium_tenants = Tenant.objects.bulk_create(
        [Tenant(name=f"bench-medium-{size}") for size in params.medium_tenants]
    )
    small = list(zip(small_tenants, (int(s) for s in sizes), strict=True))
    medium = list(zip(medium_tenants, params.medium_tenants, strict=True))
    return big, small, medium


def _copy(raw, tenant_ids, voice_ids, centroids: np.ndarray, dist: ScaleDistribution) -> None:
    """COPY voices (binary: no text formatting of a million vectors)."""
    from psycopg.types.json import Jsonb

    now = datetime.datetime.now(datetime.UTC)
    labels = Jsonb({})
    with raw.cursor() as cursor:
        sql = f"COPY voiceprint_voice ({VOICE_COLUMNS}) FROM STDIN WITH (FORMAT BINARY)"
        with cursor.copy(sql) as copy:
            copy.set_types(COPY_TYPES)
            for tenant_id, voice_id, centroid in zip(tenant_ids, voice_ids, centroids, strict=True):
                copy.write_row((
                    tenant_id, voice_id, "", VoiceStatus.ACTIVE.value, 0.75, DEFAULT_STORE,
                    labels, dist.engine, dist.dim, centroid, 0.0, now, now,
                ))  # fmt: skip
    if not raw.autocommit:
        raw.commit()


def _insert_row_by_row(big: Tenant, params, distribution, rng) -> float:
    """Voices per second, each inserted by its own statement and transaction."""
    if params.insert_sample <= 0:
        return 0.0
    means = distribution.speaker_means(rng, params.insert_sample)
    centroids = distribution.centroids(means, rng, samples=ENROLLMENT_SAMPLES)
    now = datetime.datetime.now(datetime.UTC)
    placeholders = ", ".join(["%s"] * 9 + ["%s::vector"] + ["%s"] * 3)
    sql = f"INSERT INTO voiceprint_voice ({VOICE_COLUMNS}) VALUES ({placeholders})"
    started = time.perf_counter()
    with connection.cursor() as cursor:
        for i, centroid in enumerate(centroids):
            cursor.execute(sql, [
                big.pk, f"i{i:023x}", "", VoiceStatus.ACTIVE.value, 0.75, DEFAULT_STORE, "{}",
                distribution.engine, distribution.dim, _vector_text(centroid), 0.0, now, now,
            ])  # fmt: skip
    return params.insert_sample / (time.perf_counter() - started)


def _vector_text(vector: np.ndarray) -> str:
    return "[" + ",".join(f"{x:.7g}" for x in vector) + "]"


def _count() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM voiceprint_voice")
        return cursor.fetchone()[0]


def _devices_create(big, big_ids, others, params, rng) -> list[tuple[Device, list[int]]]:
    """Half the devices in the big tenant, half in small tenants; each with four voices.
    Returns each device with the indices of its voices (into big_ids or its tenant's)."""
    created: list[tuple[Device, list[int]]] = []
    pool = [item for item in others if len(item[1]) >= VOICES_PER_DEVICE]
    in_big = params.devices // 2
    start = params.queries
    for n in range(params.devices):
        if n < in_big and start + VOICES_PER_DEVICE <= len(big_ids):
            tenant, ids = big, big_ids
            chosen = list(range(start, start + VOICES_PER_DEVICE))
            start += VOICES_PER_DEVICE
        else:
            tenant, ids, _ = pool[int(rng.integers(len(pool)))]
            chosen = [int(i) for i in rng.choice(len(ids), VOICES_PER_DEVICE, replace=False)]
        device = Device.objects.create(tenant=tenant, device_id=f"bench-device-{n}")
        voices = Voice.objects.filter(voice_id__in=[ids[i] for i in chosen])
        VoiceBinding.objects.bulk_create([VoiceBinding(voice=v, device=device) for v in voices])
        created.append((device, chosen))
    return created


def _small_probes(tenants, count: int, distribution, rng) -> list[_Probe]:
    """`count` probes, one of a random voice of each tenant in turn."""
    probes = []
    for n in range(count):
        tenant, _, means = tenants[n % len(tenants)]
        mean = means[int(rng.integers(len(means)))]
        probes.append(_Probe(tenant, distribution.probes(mean[None], rng)[0]))
    return probes


def _device_probes(devices, big_means, others, distribution, rng) -> list[_Probe]:
    """A probe of one of each device's voices."""
    probes = []
    means_by_tenant = {tenant.pk: means for tenant, _, means in others}
    for device, chosen in devices:
        index = chosen[int(rng.integers(len(chosen)))]
        if device.tenant_id in means_by_tenant:
            mean = means_by_tenant[device.tenant_id][index]
        else:
            mean = big_means[index]
        probes.append(_Probe(device.tenant, distribution.probes(mean[None], rng)[0], device))
    return probes


# --- querying -------------------------------------------------------------------------


def _store_candidates(probe: _Probe):
    """What Voice API identify searches (voiceprint.voice_api.services.store_identify)."""
    return owned(Voice, probe.tenant).filter(store=DEFAULT_STORE)


class _SqlClock:
    """The time of the statements Django sends (the database's share of a selector call,
    round trips on the local socket included)."""

    def __init__(self):
        self.seconds = 0.0

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.seconds += time.perf_counter() - started


def _timed_nearest(candidates, probe: _Probe, engine: str, top_k: int, exact: bool):
    """(selector ms, SQL ms, the nearest voices)."""
    clock = _SqlClock()
    started = time.perf_counter()
    with connection.execute_wrapper(clock):
        nearest = voice_list_nearest(
            candidates, vector=probe.vector, engine_name=engine, top_k=top_k, exact=exact
        )
    return (time.perf_counter() - started) * 1000, clock.seconds * 1000, nearest


def _hit(found, truth) -> bool:
    if not truth:
        return not found
    if not found:
        return False
    return found[0].pk == truth[0].pk or abs(found[0].distance - truth[0].distance) <= TIE


def _row(query: str, mode: str, gallery: str, timings, hits) -> QueryRow:
    """A row from (selector ms, SQL ms) pairs and the queries' hits."""
    selector = [t[0] for t in timings] or [0.0]
    sql = [t[1] for t in timings] or [0.0]
    return QueryRow(
        query=query,
        mode=mode,
        gallery=gallery,
        p50_ms=float(np.percentile(selector, 50)),
        p95_ms=float(np.percentile(selector, 95)),
        sql_p50_ms=float(np.percentile(sql, 50)),
        recall_at_1=float(np.mean(hits)) if hits else 0.0,
    )


def _query_rows(
    query: str, gallery: str, probes: list[_Probe], *, params, engine, top_k, ef_sweep=True
) -> list[QueryRow]:
    truths, exact_ms = [], []
    for probe in probes[: min(10, len(probes))]:  # warm the caches
        _timed_nearest(_store_candidates(probe), probe, engine, top_k, exact=True)
    for probe in probes:
        *elapsed, nearest = _timed_nearest(_store_candidates(probe), probe, engine, top_k, True)
        truths.append(nearest)
        exact_ms.append(elapsed)
    rows = [_row(query, "exact", gallery, exact_ms, [True] * len(probes))]
    passes = [(f"routed (settings: ef_search {settings.VOICEPRINT_HNSW_EF_SEARCH})", None)]
    if ef_sweep:
        passes += [(f"index, ef_search {ef}", ef) for ef in params.ef_search]
    else:
        passes.append(("index forced, ef_search 40", 40))
    for mode, ef in passes:
        overrides = {}
        if ef is not None:
            overrides = {"VOICEPRINT_HNSW_EF_SEARCH": ef, "VOICEPRINT_EXACT_SEARCH_MAX_VOICES": 0}
        with override_settings(**overrides):
            latencies, hits = [], []
            for probe, truth in zip(probes, truths, strict=True):
                *elapsed, found = _timed_nearest(
                    _store_candidates(probe), probe, engine, top_k, exact=False
                )
                latencies.append(elapsed)
                hits.append(_hit(found, truth))
        rows.append(_row(query, mode, gallery, latencies, hits))
    return rows


def _device_rows(probes: list[_Probe], engine: str) -> list[QueryRow]:
    """Device identify: the device's bound voices, exactly (voiceprint.services.recognition)."""
    rows = []
    for where, chosen in (
        ("device identify, big tenant", [p for p in probes if p.tenant.name == "bench-big"]),
        ("device identify, small tenant", [p for p in probes if p.tenant.name != "bench-big"]),
    ):
        latencies, hits = [], []
        for probe in chosen:
            candidates = owned(Voice, probe.tenant).filter(bindings__device=probe.device)
            *elapsed, found = _timed_nearest(candidates, probe, engine, SCORED_VOICES, True)
            latencies.append(elapsed)
            hits.append(len(found) == VOICES_PER_DEVICE)
        rows.append(_row(where, "exact", str(VOICES_PER_DEVICE), latencies, hits))
    return rows


# --- the server and the machine -------------------------------------------------------


def _server_memory_mib() -> tuple[float, float]:
    """RSS and PSS of the PostgreSQL server's processes (postmaster and children), when it
    runs on this machine; PSS shares the shared buffers out fairly instead of counting them
    once per process."""
    import psutil

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    try:
        postmaster = psutil.Process(backend).parent()
        processes = [postmaster, *postmaster.children()]
    except psutil.Error:
        return 0.0, 0.0
    rss = pss = 0
    for process in processes:
        try:
            rss += process.memory_info().rss
            pss += _pss(process.pid)
        except (psutil.Error, OSError):
            continue
    return rss / 2**20, pss / 2**20


def _pss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) * 1024
    return 0


def _machine() -> str:
    python = platform.python_version()
    return f"{cpu_model()}, {os.cpu_count()} cores, Python {python}, load {load_average()}"


def _server_versions() -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_setting('server_version'), "
            "(SELECT extversion FROM pg_extension WHERE extname = 'vector'), "
            "current_setting('shared_buffers')"
        )
        server, pgvector, shared_buffers = cursor.fetchone()
    return f"PostgreSQL {server}, pgvector {pgvector}, shared_buffers {shared_buffers}"


def report_markdown(report: ScaleReport) -> str:
    """The 'scale' section of docs/BENCHMARKS.md."""
    p = report.params
    load_rate = (report.total_voices - p.insert_sample) / max(report.load_seconds, 1e-9)
    lines = [
        "# Nearest-voice search at scale",
        "",
        f"Generated by `manage.py bench_scale --voices {p.voices}` (`make bench-scale`) on "
        f"{report.started}; {report.machine}; {report.server}. Voices and probes are drawn "
        f"from the {report.engine} embedding distribution fitted to the shared LibriSpeech "
        "speech (engine/heads/scale-ge2e.npz: between- and within-speaker covariance), not "
        "isotropic vectors. Latency is the service's selector (voice_list_nearest) called from "
        "Python: the SQL and the few model instances it returns; *SQL* is the statements' "
        "share (in the database, and the round trips on the local socket). Recall@1 is "
        "against the exact answer of the same query (a tie within 1e-6 counts as right).",
        "",
        "| | |",
        "|---|---|",
        f"| voices | {report.total_voices:,} in all: {p.voices:,} in the big tenant, "
        f"{p.small_tenants:,} small tenants ({SMALL_TENANT_VOICES[0]}-{SMALL_TENANT_VOICES[1]}"
        f" voices, log-uniform), medium tenants of {', '.join(f'{s:,}' for s in p.medium_tenants)}"
        f"; {p.devices} devices with {VOICES_PER_DEVICE} voices |",
        f"| bulk load (COPY, no index) | {report.load_seconds:.0f} s ({load_rate:,.0f} voices/s) |",
        f"| HNSW build after the load (m {report.m}, ef_construction {report.ef_construction},"
        f" maintenance_work_mem {p.work_mem}) | {report.build_seconds:.0f} s |",
        f"| row-by-row insert into the indexed table ({p.insert_sample:,} voices, one "
        f"transaction each) | {report.insert_rate:.0f} voices/s |",
        f"| index size / table size with its indexes | {report.index_mib:,.0f} MiB / "
        f"{report.table_mib:,.0f} MiB |",
        f"| PostgreSQL server memory after the queries (RSS summed / PSS) | "
        f"{report.server_rss_mib:,.0f} MiB / {report.server_pss_mib:,.0f} MiB |",
        "",
        f"{p.queries} probes per query type (a quarter of that per medium tenant); "
        "*routed* is the service as configured (VOICEPRINT_HNSW_EF_SEARCH, "
        "VOICEPRINT_EXACT_SEARCH_MAX_VOICES); *index* forces the HNSW index at that ef_search.",
        "",
        "| query | search | voices searched | p50 ms | p95 ms | SQL p50 ms | recall@1 |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in report.rows:
        lines.append(
            f"| {row.query} | {row.mode} | {row.gallery} | {row.p50_ms:.1f} | "
            f"{row.p95_ms:.1f} | {row.sql_p50_ms:.1f} | {row.recall_at_1:.3f} |"
        )
    return "\n".join(lines) + "\n"

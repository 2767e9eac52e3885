"""Reads: voices, always scoped to one tenant, nearest-neighbour search, and a device's
identify outcomes over time."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, F, Prefetch, Q, QuerySet, Sum, Value
from django.db.models.functions import Cast, Trunc
from django.utils import timezone
from pgvector.django import CosineDistance, VectorField

from core.exceptions import not_found
from devices.models import Device
from tenancy.models import Tenant
from tenancy.scoping import get_owned, owned
from voiceprint.guidance import EnrollmentSummary, SampleFacts, enrollment_summary
from voiceprint.models import (
    IdentifyOutcomeCount,
    OperatingPoint,
    SampleKind,
    Voice,
    VoiceBinding,
    VoiceConsent,
    VoiceSample,
)


def _with_relations(queryset: QuerySet[Voice]) -> QuerySet[Voice]:
    """What the voice object needs, in a fixed number of queries."""
    return (
        queryset.select_related("role", "consent")
        .prefetch_related(
            Prefetch("devices", queryset=Device.objects.order_by("created_at", "pk")),
            Prefetch("samples", queryset=VoiceSample.objects.defer("embedding")),
        )
        .annotate(sample_count=Count("samples", distinct=True))
        .defer("centroid")
    )


def voice_list(
    tenant: Tenant, *, device_id: str | None = None, role_id: str | None = None
) -> QuerySet[Voice]:
    voices = owned(Voice, tenant)
    if device_id:
        voices = voices.filter(devices__device_id=device_id, devices__tenant=tenant)
    if role_id:
        voices = voices.filter(role__role_id=role_id)
    return _with_relations(voices)


def voice_get(tenant: Tenant, *, voice_id: str) -> Voice:
    return get_owned(_with_relations(owned(Voice, tenant)), tenant, "voice", voice_id=voice_id)


def voice_is_bound(tenant: Tenant, *, voice_id: str, device_id: str) -> bool:
    """Whether the tenant's voice `voice_id` is bound to its device `device_id`."""
    return VoiceBinding.objects.filter(
        voice__tenant=tenant,
        voice__voice_id=voice_id,
        device__tenant=tenant,
        device__device_id=device_id,
    ).exists()


def voice_list_bound(tenant: Tenant, *, device: Device) -> QuerySet[Voice]:
    """The voices bound to `device`, by name, with their centroids and samples (without
    embeddings): what a device's household page shows."""
    return (
        owned(Voice, tenant)
        .filter(bindings__device=device, bindings__device__tenant=tenant)
        .select_related("role")
        .prefetch_related(Prefetch("samples", queryset=VoiceSample.objects.defer("embedding")))
        .order_by("name", "pk")
    )


def voice_sample_list(voice: Voice) -> QuerySet[VoiceSample]:
    """The voice's samples in the order their `sample` index counts (the API's index)."""
    return voice.samples.defer("embedding").order_by("created_at", "pk")


def voice_sample_get(voice: Voice, *, index: str) -> VoiceSample:
    """The sample at `index` (a decimal string, as the API's path or query gives it); 40400
    for anything else or past the last one."""
    samples = list(voice_sample_list(voice))
    if not (index.isascii() and index.isdigit()) or int(index) >= len(samples):
        raise not_found("sample")
    return samples[int(index)]


def voice_enrollment(voice: Voice) -> EnrollmentSummary:
    """The voice's enrollment progress and issues, from its stored samples."""
    facts = [
        SampleFacts(
            speech_seconds=sample.speech_seconds,
            snr_db=sample.snr_db,
            clipping=sample.clipping,
            agreement=sample.agreement,
            adaptation=sample.kind == SampleKind.ADAPTATION,
        )
        for sample in voice.samples.all()  # in the order of voices/{id}/audio?sample=
    ]
    return enrollment_summary(facts, agreement_threshold=voice.threshold)


def voice_list_lookalike_candidates(
    tenant: Tenant, *, devices: Iterable[Device], store: str, exclude: Voice | None = None
) -> QuerySet[Voice]:
    """The tenant's voices a new voice on `devices` or in `store` could be mistaken for."""
    bound = VoiceBinding.objects.filter(device__in=list(devices)).values("voice_id")
    voices = owned(Voice, tenant).filter(Q(pk__in=bound) | Q(store=store))
    return voices.exclude(pk=exclude.pk) if exclude is not None else voices


def voice_list_nearest(
    candidates: QuerySet[Voice],
    *,
    vector: np.ndarray,
    engine_name: str,
    top_k: int,
    exact: bool = False,
) -> Sequence[Voice]:
    """The `top_k` voices among `candidates` closest to `vector` by cosine distance, each
    with `.distance`. Only voices of the same engine are compared. The expression matches
    the partial HNSW index of that dimension (migration 0002).

    `exact` compares every candidate instead of asking the index: for the few voices of a
    device (at most VOICEPRINT_MAX_VOICES_PER_DEVICE), an exact answer costs nothing, and an
    approximate one may miss. Under a selective filter the graph can lead the scan through
    deleted and filtered-out entries only and return nothing at all (seen: a device with
    one voice answered no voice once, in a database full of other tests' dead rows).
    Without `exact`, a gallery of at most VOICEPRINT_EXACT_SEARCH_MAX_VOICES voices is
    compared exactly too: below that size exact search is as fast as the index (measured
    by `make bench-scale`, docs/BENCHMARKS.md) and always right, and the planner must not
    walk the graph of a million voices to find a small tenant's few.
    """
    dim = len(vector)
    typed_centroid = Cast("centroid", VectorField(dimensions=dim))
    gallery = candidates.filter(engine_name=engine_name, dim=dim, centroid__isnull=False)
    distances = gallery.select_related("role").annotate(
        distance=CosineDistance(typed_centroid, vector)
    )
    if exact or _gallery_is_small(gallery):
        # `distance + 0` is an order no index can serve, so every candidate is compared,
        # in one statement (no transaction to scope a planner setting: two round trips
        # fewer on every device identify).
        ordered = distances.order_by((F("distance") + Value(0.0)).asc())
        return list(ordered[:top_k])
    with transaction.atomic(), connection.cursor() as cursor:
        # When the index serves a filtered query (tenant, store), let it keep scanning
        # until `top_k` rows pass the filter instead of returning too few (pgvector 0.8).
        # Relaxed, not strict, order: strict order discards rows found after a farther
        # one was returned, and so under-returned too. The few rows are sorted here
        # instead. ef_search is the breadth of the graph search: recall against latency
        # (docs/BENCHMARKS.md).
        cursor.execute(
            "SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true), "
            "set_config('hnsw.ef_search', %s, true)",
            [str(settings.VOICEPRINT_HNSW_EF_SEARCH)],
        )
        ordered = distances.order_by("distance")[:top_k]
        return sorted(ordered, key=lambda voice: voice.distance)


def _gallery_is_small(gallery: QuerySet[Voice]) -> bool:
    """At most VOICEPRINT_EXACT_SEARCH_MAX_VOICES voices (counted up to one more, so a
    big gallery costs that many rows, not a full count). Unordered: under Voice's default
    ordering the database sorted the whole gallery first (126 ms at 200 k voices)."""
    limit = settings.VOICEPRINT_EXACT_SEARCH_MAX_VOICES
    return limit > 0 and gallery.order_by()[: limit + 1].count() <= limit


def operating_point_get(tenant: Tenant, *, engine_name: str) -> float | None:
    """The tenant's fitted z threshold for `engine_name` (manage.py calibrate), or None."""
    return (
        owned(OperatingPoint, tenant)
        .filter(engine_name=engine_name)
        .values_list("z_threshold", flat=True)
        .first()
    )


# --- identify outcomes over time ------------------------------------------------------------

Bucket = Literal["hour", "day"]


@dataclass(frozen=True)
class OutcomeBucket:
    """A device's identify outcomes in one hour or day (UTC) starting at `start`."""

    start: datetime
    match: int = 0
    no_match: int = 0
    uncertain: int = 0
    #: Probes the anti-spoofing countermeasure refused.
    spoof: int = 0

    @property
    def total(self) -> int:
        return self.match + self.no_match + self.uncertain + self.spoof


def identify_outcome_list(
    tenant: Tenant,
    *,
    device: Device,
    days: int = 7,
    bucket: Bucket = "hour",
    now: datetime | None = None,
) -> list[OutcomeBucket]:
    """The device's identify outcomes of the last `days` days, per hour or per day, oldest
    first; every bucket is listed, those without a call as zeros. The current hour (day)
    is the last bucket."""
    step = timedelta(hours=1) if bucket == "hour" else timedelta(days=1)
    end = _truncate(now or timezone.now(), bucket) + step
    start = end - timedelta(days=days)
    sums = (
        IdentifyOutcomeCount.objects.filter(
            device=device, device__tenant=tenant, hour__gte=start, hour__lt=end
        )
        .annotate(start=Trunc("hour", bucket, tzinfo=UTC))
        .values("start")
        .annotate(
            matches=Sum("match"),
            misses=Sum("no_match"),
            unsure=Sum("uncertain"),
            spoofs=Sum("spoof"),
        )
    )
    found = {row["start"]: row for row in sums}
    buckets = []
    for index in range(round((end - start) / step)):
        at = start + index * step
        row = found.get(at, {})
        buckets.append(
            OutcomeBucket(
                start=at,
                match=row.get("matches", 0),
                no_match=row.get("misses", 0),
                uncertain=row.get("unsure", 0),
                spoof=row.get("spoofs", 0),
            )
        )
    return buckets


def _truncate(moment: datetime, bucket: Bucket) -> datetime:
    moment = moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return moment.replace(hour=0) if bucket == "day" else moment


def voice_consent(voice: Voice) -> dict | None:
    """The voice's consent record as the API, the export and the console show it (time in
    ISO 8601); None when it was enrolled without one."""
    try:
        record = voice.consent
    except VoiceConsent.DoesNotExist:
        return None
    return {
        "subject": record.subject,
        "text_version": record.text_version,
        "time": record.given_at.isoformat().replace("+00:00", "Z"),
        "channel": record.channel,
    }

"""Reads: voices, always scoped to one tenant, and nearest-neighbour search."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from django.db import connection, transaction
from django.db.models import Count, Prefetch, QuerySet
from django.db.models.functions import Cast
from pgvector.django import CosineDistance, VectorField

from devices.models import Device
from tenancy.models import Tenant
from tenancy.scoping import get_owned, owned
from voiceprint.models import OperatingPoint, Voice


def _with_relations(queryset: QuerySet[Voice]) -> QuerySet[Voice]:
    """What the voice object needs, in a fixed number of queries."""
    return (
        queryset.select_related("role")
        .prefetch_related(Prefetch("devices", queryset=Device.objects.order_by("created_at", "pk")))
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


def voice_list_nearest(
    candidates: QuerySet[Voice], *, vector: np.ndarray, engine_name: str, top_k: int
) -> Sequence[Voice]:
    """The `top_k` voices among `candidates` closest to `vector` by cosine distance, each
    with `.distance`. Only voices of the same engine are compared. The expression matches
    the partial HNSW index of that dimension (migration 0002)."""
    dim = len(vector)
    typed_centroid = Cast("centroid", VectorField(dimensions=dim))
    query = (
        candidates.filter(engine_name=engine_name, dim=dim, centroid__isnull=False)
        .select_related("role")
        .annotate(distance=CosineDistance(typed_centroid, vector))
        .order_by("distance")[:top_k]
    )
    with transaction.atomic(), connection.cursor() as cursor:
        # When the index serves a filtered query (tenant, device, store), let it keep
        # scanning until `top_k` rows pass the filter instead of returning too few (pgvector
        # 0.8). Relaxed, not strict, order: strict order discards rows found after a farther
        # one was returned, and so under-returned too (a device with 4 voices answered 1
        # once the index held other tests' dead rows). The few rows are sorted here instead.
        cursor.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
        return sorted(query, key=lambda voice: voice.distance)


def operating_point_get(tenant: Tenant, *, engine_name: str) -> float | None:
    """The tenant's fitted z threshold for `engine_name` (manage.py calibrate), or None."""
    return (
        owned(OperatingPoint, tenant)
        .filter(engine_name=engine_name)
        .values_list("z_threshold", flat=True)
        .first()
    )

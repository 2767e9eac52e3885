"""Voices (voiceprints), their enrollment samples and their bindings to devices.

Embeddings live in pgvector columns typed `vector` without a fixed dimension, because
engines differ (192 for the 3D-Speaker networks, 256 for GE2E). Each row records its
engine (`engine_name`) and `dim`; partial HNSW indexes on `centroid::vector(N)` per dimension
(see migrations) keep nearest-neighbour search an index query for every engine, and
embeddings of different engines are never compared.
"""

from __future__ import annotations

from django.db import models
from pgvector.django import VectorField

from devices.models import Device
from roles.models import Role
from tenancy.models import TenantOwned, new_public_id

DEFAULT_STORE = "default"
#: Dimensions that get an HNSW index (one per engine family); see migration 0002.
INDEXED_DIMENSIONS = (192, 256)


class VoiceStatus(models.TextChoices):
    ACTIVE = "activate", "active"
    PROCESSING = "processing", "processing"
    FAILED = "failed", "failed"


class Voice(TenantOwned):
    voice_id = models.CharField(max_length=32, unique=True, default=new_public_id, editable=False)
    name = models.CharField(max_length=128, blank=True)
    status = models.CharField(
        max_length=16, choices=VoiceStatus.choices, default=VoiceStatus.ACTIVE
    )
    #: Cosine similarity a probe must reach to match this voice.
    threshold = models.FloatField()
    role = models.ForeignKey(
        Role, null=True, blank=True, on_delete=models.SET_NULL, related_name="voices"
    )
    devices = models.ManyToManyField(Device, through="VoiceBinding", related_name="voices")
    #: Named gallery of the Voice API inside the tenant.
    store = models.CharField(max_length=64, default=DEFAULT_STORE)
    labels = models.JSONField(default=dict, blank=True)
    #: Name of the speaker engine that made the centroid (the API's `model`), and its
    #: dimension.
    engine_name = models.CharField("engine", max_length=32)
    dim = models.PositiveSmallIntegerField()
    #: L2-normalised mean of the samples' embeddings (voiceprint.adaptation weighs
    #: adaptation samples, when there are any).
    centroid = VectorField(null=True, blank=True)
    #: Share of the centroid its adaptation samples hold (0 without any): the threshold
    #: rises with it (voiceprint.adaptation.raised_threshold).
    adaptation_share = models.FloatField(default=0.0, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "pk"]
        indexes = [
            models.Index(fields=["tenant", "store", "engine_name"], name="voice_gallery_idx")
        ]

    def __str__(self) -> str:
        return self.name or self.voice_id


class VoiceConsent(models.Model):
    """The consent a voice was enrolled under (README, "Consent"): who gave it, which
    version of the consent text they were shown, when, and through which channel. Kept
    as given at enrollment and deleted with the voice."""

    voice = models.OneToOneField(Voice, on_delete=models.CASCADE, related_name="consent")
    #: Who consented: a name or the client's own id of the person.
    subject = models.CharField(max_length=128)
    #: The version of the consent text shown to them.
    text_version = models.CharField(max_length=64)
    #: Where it was given: "app", "voice", "web", "paper", ...
    channel = models.CharField(max_length=32)
    given_at = models.DateTimeField()

    class Meta:
        verbose_name = "consent"

    def __str__(self) -> str:
        return f"{self.subject} ({self.text_version}, {self.channel})"


class VoiceBinding(models.Model):
    voice = models.ForeignKey(Voice, on_delete=models.CASCADE, related_name="bindings")
    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="bindings")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["voice", "device"], name="one_binding_per_voice_device")
        ]

    def __str__(self) -> str:
        return f"{self.voice} @ {self.device}"


class SampleKind(models.TextChoices):
    ENROLLMENT = "enrollment", "enrollment"
    #: Added from a confident identify or verify match (voiceprint.adaptation), when the
    #: setting allows it; capped, never replaces an enrollment sample.
    ADAPTATION = "adaptation", "adaptation"


class VoiceSample(models.Model):
    """One enrollment recording: the audio as received, its embedding and its quality.

    Once VOICEPRINT_AUDIO_RETENTION_DAYS have passed, `manage.py purge_audio` deletes the
    recording (`audio` becomes "", `audio_purged_at` is set): the sample keeps its
    embedding, speech, quality and agreement, so the voice keeps working, but nothing can
    be recomputed from it any more (voiceprint.services.retention). Imported embeddings
    (`imported`) are samples of that kind from the start."""

    voice = models.ForeignKey(Voice, on_delete=models.CASCADE, related_name="samples")
    #: The stored (encrypted) recording; "" once purged.
    audio = models.FileField(upload_to="voices/", max_length=255, blank=True)
    audio_purged_at = models.DateTimeField(null=True, blank=True, editable=False)
    #: Name of the speaker engine that made the embedding.
    engine_name = models.CharField("engine", max_length=32)
    embedding = VectorField()
    duration_seconds = models.FloatField()
    speech_seconds = models.FloatField()
    #: engine.ProbeQuality of the recording; None for samples stored before it was kept.
    snr_db = models.FloatField(null=True, blank=True)
    clipping = models.FloatField(null=True, blank=True)
    #: Cosine similarity of this sample's embedding to the mean of the voice's other
    #: samples (None for a voice's only sample): a low value marks a sample of someone else.
    agreement = models.FloatField(null=True, blank=True)
    kind = models.CharField(
        max_length=16, choices=SampleKind.choices, default=SampleKind.ENROLLMENT
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "pk"]
        indexes = [
            # The daily purge's question: kept recordings older than the retention.
            models.Index(
                fields=["created_at"],
                condition=models.Q(audio_purged_at__isnull=True),
                name="sample_audio_kept_idx",
            )
        ]

    def __str__(self) -> str:
        return f"sample {self.pk} of {self.voice}"

    @property
    def imported(self) -> bool:
        """An embedding imported without audio (`manage.py import_embeddings`): such a
        sample is marked purged from the start, its `audio_purged_at` no later than its
        `created_at` (a purge always comes after)."""
        return self.audio_purged_at is not None and self.audio_purged_at <= self.created_at


class OperatingPoint(TenantOwned):
    """A tenant's own decision point for one engine, fitted by `manage.py calibrate` on its
    labelled audio: the AS-norm z threshold that gave `target_far` there. Voices that keep
    the engine's default threshold are decided with it (voiceprint.decision)."""

    engine_name = models.CharField(max_length=32)
    z_threshold = models.FloatField()
    target_far = models.FloatField()
    #: What it was fitted on: different-speaker and same-speaker trials, and speakers.
    nontarget_trials = models.PositiveIntegerField()
    target_trials = models.PositiveIntegerField()
    speakers = models.PositiveIntegerField()
    #: False-reject rate at this point on the same audio (None without same-speaker trials).
    measured_frr = models.FloatField(null=True, blank=True)
    fitted_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "engine_name"], name="one_operating_point_per_engine"
            )
        ]

    def __str__(self) -> str:
        return f"{self.engine_name}: z >= {self.z_threshold:.2f} (FAR {self.target_far:g})"


class IdentifyOutcomeCount(models.Model):
    """How many identify calls of one device ended in each outcome (voiceprint.decision)
    in one hour (UTC, truncated): the console's outcomes over time. Counted by
    voice_identify with one upsert; the tenant is the device's."""

    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="identify_outcomes")
    hour = models.DateTimeField()
    match = models.PositiveIntegerField(default=0)
    no_match = models.PositiveIntegerField(default=0)
    uncertain = models.PositiveIntegerField(default=0)
    spoof = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["device", "hour"]
        constraints = [
            # Also the index of a device's recent hours (device first, then hour).
            models.UniqueConstraint(fields=["device", "hour"], name="one_outcome_count_per_hour")
        ]

    def __str__(self) -> str:
        return f"{self.device} @ {self.hour:%Y-%m-%d %H:00}"

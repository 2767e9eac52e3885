"""Does safe adaptation (voiceprint.adaptation) help a household over time? A simulation on
the household material (engine.household, embedded by voiceprint.evaluation).

Each speaker's probe part is cut in two halves: the **stream** half gives the probes a
household's device hears over time, the **held-out** half the probes that score it, so that
no probe is scored after being adapted on. For each household (``household_size`` members in
label order, as the household report makes them):

* ``visitors`` non-members, drawn with the seed, come and go: the **stream** is every stream
  probe of the members and of the visitors, in every condition, in a seeded random order;
* each stream probe is decided (voiceprint.decision) against the household's *current*
  centroids and thresholds (``adapted_threshold``); with adaptation on, a probe that
  qualifies (``adaptation_voice``) joins the matched voice, right or wrong, and that
  voice's centroid and threshold are formed again;
* the stream is cut in ``bins`` in time; before it and after each bin, the held-out probes
  of the members, of the visitors and of every other speaker (**strangers**) are decided
  against the centroids of that moment, without adapting.

Every policy sees the same households, visitors and order, so that they differ only in
the adaptation rule. What is counted: ``Counts``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from engine.household import Condition, Material
from engine.scoring import Scorer
from voiceprint.adaptation import (
    AdaptationRule,
    adaptation_voice,
    adapted_centroid,
    adapted_threshold,
    samples_after_adding,
)
from voiceprint.decision import Decision, decide, score_voices
from voiceprint.evaluation import (
    EmbeddedMaterial,
    EmbeddedProbe,
    ProbeSetup,
    balanced_point,
    embed_material,
    embed_probes,
    household_groups,
)


@dataclass
class StreamMaterial:
    #: Enrollment samples and centroids; its probes are the stream probes.
    embedded: EmbeddedMaterial
    held_out: list[EmbeddedProbe]
    held_out_refused: dict[str, int] = field(default_factory=dict)


def split_probe_parts(material: Material) -> tuple[Material, Material]:
    """``material`` twice: with the first half of each probe part (the stream), and with
    the second half (held out)."""
    halves = [(s, len(s.probe_part) // 2) for s in material.speakers]
    first = [dataclasses.replace(s, probe_part=s.probe_part[:cut]) for s, cut in halves]
    second = [dataclasses.replace(s, probe_part=s.probe_part[cut:]) for s, cut in halves]
    return Material(first, material.skipped), Material(second, material.skipped)


def embed_stream_material(
    material: Material,
    conditions: Sequence[Condition],
    *,
    engine_name: str | None = None,
    stream_windows: int = 4,
    held_out_windows: int = 3,
    noises: Sequence[np.ndarray] = (),
    seed: int = 0,
    progress: bool = True,
) -> StreamMaterial:
    """Enroll every speaker of ``material`` and embed its stream and held-out probes."""
    stream, held_out = split_probe_parts(material)
    embedded = embed_material(
        stream,
        conditions,
        engine_name=engine_name,
        windows_per_speaker=stream_windows,
        noises=noises,
        seed=seed,
        progress=progress,
    )
    # The held-out probes of the same voices, kept apart from the stream's.
    held = dataclasses.replace(embedded, probes=[], refused={})
    setup = ProbeSetup(
        conditions, windows_per_speaker=held_out_windows, noises=noises, seed=seed + 1
    )
    embed_probes(held, held_out, setup, engine_name=engine_name, progress=progress)
    return StreamMaterial(embedded=embedded, held_out=held.probes, held_out_refused=held.refused)


# --- the simulation ---------------------------------------------------------------------------


@dataclass
class Counts:
    """Decisions on some probes: ``matched`` (any voice), of which ``accepted`` (the right
    voice: for a non-member, never: all its matches are false accepts), and ``uncertain``."""

    probes: int = 0
    matched: int = 0
    accepted: int = 0
    uncertain: int = 0

    @property
    def confused(self) -> int:
        return self.matched - self.accepted

    def add(self, outcome: str, right_voice: bool) -> None:
        self.probes += 1
        self.matched += outcome == "match"
        self.accepted += outcome == "match" and right_voice
        self.uncertain += outcome == "uncertain"

    def __iadd__(self, other: Counts) -> Counts:
        for name in ("probes", "matched", "accepted", "uncertain"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        return self

    def rate(self, count: int) -> float:
        return count / self.probes if self.probes else 0.0


@dataclass
class Checkpoint:
    """The held-out decisions at one moment: counts per group and condition name, and the
    best scores (the rule's rank score) of the members' probes and of everyone else's."""

    counts: dict[tuple[str, str], Counts] = field(default_factory=dict)
    member_best: list[float] = field(default_factory=list)
    member_right: list[bool] = field(default_factory=list)
    others_best: list[float] = field(default_factory=list)

    def total(self, group: str, condition: str | None = None) -> Counts:
        total = Counts()
        for (g, c), counts in self.counts.items():
            if g == group and condition in (None, c):
                total += counts
        return total

    @property
    def balanced_error(self) -> float | None:
        """Where members' rejections equal non-members' acceptances, whatever the threshold:
        whether adaptation separates members from others better, not just scores higher."""
        if not self.member_best or not self.others_best:
            return None
        return balanced_point(self.member_best, self.member_right, self.others_best)[1]

    def accepted_at(self, false_accepts: float) -> float:
        """The share of member probes whose best voice is right and scores above the score
        that only ``false_accepts`` of the non-members' probes exceed: acceptance at a fixed
        false-accept rate, whatever threshold the voices keep."""
        if not self.member_best or not self.others_best:
            return 0.0
        point = float(np.quantile(self.others_best, 1.0 - false_accepts))
        return float(
            np.mean(np.asarray(self.member_right) & (np.asarray(self.member_best) > point))
        )


@dataclass
class AdaptationResult:
    name: str
    rule: AdaptationRule | None
    #: Stream decisions per time bin: "members" and "visitors".
    stream: list[dict[str, Counts]]
    #: Held-out decisions before the stream (0) and after each time bin (i).
    held_out: list[Checkpoint]
    #: Adaptation samples added to the right voice, to another member's, from a visitor;
    #: and samples the cap replaced.
    added: dict[str, int] = field(
        default_factory=lambda: {"right voice": 0, "wrong member": 0, "visitor": 0}
    )
    replaced: int = 0

    def stream_total(self, group: str, bins: range) -> Counts:
        total = Counts()
        for i in bins:
            total += self.stream[i][group]
        return total


@dataclass
class _Voice:
    enrollment: np.ndarray
    #: (embedding, speaker who said it), oldest first.
    adaptation: list[tuple[np.ndarray, int]] = field(default_factory=list)


def simulate_adaptation(
    material: StreamMaterial,
    *,
    name: str,
    rule: AdaptationRule | None,
    scorer: Scorer | None,
    threshold: float,
    household_size: int = 4,
    visitors: int = 2,
    bins: int = 4,
    seed: int = 0,
) -> AdaptationResult:
    """Every household's stream under ``rule`` (None: adaptation off); module docstring."""
    embedded = material.embedded
    result = AdaptationResult(
        name=name,
        rule=rule,
        stream=[{"members": Counts(), "visitors": Counts()} for _ in range(bins)],
        held_out=[Checkpoint() for _ in range(bins + 1)],
    )
    everyone = np.arange(len(embedded.labels))
    for number, members in enumerate(household_groups(len(embedded.labels), household_size)):
        rng = np.random.default_rng([seed, number])  # the same draw for every policy
        guests = rng.choice(np.setdiff1d(everyone, members), size=visitors, replace=False)
        household = _Household(embedded, members, guests.tolist(), scorer, threshold, rule)
        stream = [p for p in embedded.probes if p.speaker in household.speakers]
        order = rng.permutation(len(stream))
        household.score_held_out(material.held_out, result.held_out[0])
        for i, part in enumerate(np.array_split(order, bins)):
            for index in part:
                household.hear(stream[index], result.stream[i], result)
            household.score_held_out(material.held_out, result.held_out[i + 1])
    return result


class _Household:
    def __init__(
        self,
        embedded: EmbeddedMaterial,
        members: list[int],
        visitors: list[int],
        scorer: Scorer | None,
        threshold: float,
        rule: AdaptationRule | None,
    ):
        self.members, self.visitors = members, visitors
        self.speakers = set(members) | set(visitors)
        self.scorer, self.threshold, self.rule = scorer, threshold, rule
        self.voices = [
            _Voice(enrollment=embedded.samples[embedded.sample_speakers == m]) for m in members
        ]
        self.centroids = np.stack([self._centroid(v) for v in self.voices])

    def _centroid(self, voice: _Voice) -> np.ndarray:
        vectors = [vector for vector, _ in voice.adaptation]
        if self.rule is None:
            return adapted_centroid(voice.enrollment)
        return adapted_centroid(voice.enrollment, vectors, rule=self.rule)

    def _threshold(self, voice: _Voice) -> float:
        if self.rule is None:
            return self.threshold
        return adapted_threshold(
            self.threshold,
            enrolled=len(voice.enrollment),
            adapted=len(voice.adaptation),
            rule=self.rule,
        )

    def decide(self, probe: EmbeddedProbe) -> Decision:
        ranked = score_voices(
            self.members,
            centroids=self.centroids,
            thresholds=[self._threshold(v) for v in self.voices],
            probe=probe.embedding,
            scorer=self.scorer,
        )
        return decide(ranked, self.scorer)

    def hear(
        self, probe: EmbeddedProbe, counts: dict[str, Counts], result: AdaptationResult
    ) -> None:
        """Decide a stream probe (counted in ``counts``) and adapt on it if it qualifies."""
        decision = self.decide(probe)
        group = "members" if probe.speaker in self.members else "visitors"
        counts[group].add(decision.outcome, decision.best.voice == probe.speaker)
        if self.rule is None:
            return
        voice = adaptation_voice(decision, probe.embedding.quality, rule=self.rule)
        if voice is None:
            return
        index = self.members.index(voice)
        target = self.voices[index]
        if len(target.adaptation) >= self.rule.max_samples:
            result.replaced += 1
        sample = (probe.embedding.vector, probe.speaker)
        target.adaptation = samples_after_adding(target.adaptation, sample, rule=self.rule)
        self.centroids[index] = self._centroid(target)
        kind = "visitor" if group == "visitors" else "wrong member"
        result.added["right voice" if voice == probe.speaker else kind] += 1

    def score_held_out(self, probes: Sequence[EmbeddedProbe], checkpoint: Checkpoint) -> None:
        for probe in probes:
            group = (
                "members"
                if probe.speaker in self.members
                else "visitors"
                if probe.speaker in self.visitors
                else "strangers"
            )
            decision = self.decide(probe)
            right = decision.best.voice == probe.speaker
            key = (group, probe.condition.name)
            checkpoint.counts.setdefault(key, Counts()).add(decision.outcome, right)
            if group == "members":
                checkpoint.member_best.append(decision.best.rank_score)
                checkpoint.member_right.append(right)
            else:
                checkpoint.others_best.append(decision.best.rank_score)

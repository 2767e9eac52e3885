"""Streaming benchmark: `python -m config.bench_stream [--out docs/BENCHMARKS.md]`
(`make bench-stream`).

WS /v1/voiceprint/stream (docs/STREAMING.md) against the production server of `make run`
(config.bench_load's Service: gunicorn, the embedded PostgreSQL, its own port and folder),
engine `ge2e`, one torch thread per process. LibriSpeech speakers are enrolled on one device
(the first ENROLL_SECONDS of a long utterance), and streams are made of the next
PROBE_SECONDS of each, separated by GAP_SECONDS of silence, sent in 100 ms frames at the
pace of real time. Measured:

1. the first partials: one stream carrying every probe once; per utterance, the audio
   seconds from its first sample to its first partial naming the right speaker;
2. the load: N streams at once (each its own rotation of the probes, STREAM_SECONDS long):
   the partials' `compute_ms`, the lag of the finals (wall time from sending the frame that
   holds the final's `end`, where the server's endpointing closed the utterance, to receiving
   the final), and partials per stream-second against the unloaded stream of step 1.

Knobs for a short run (environment): STREAM_SPEAKERS, STREAM_SECONDS, STREAM_LEVELS
("1,2,4"), STREAM_SPEED (1 = real time), STREAM_WORKERS (web processes), PROBE_SECONDS.
Written as the "stream" section of the output file (utilities.markdown_sections).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from websockets.asyncio.client import connect

from config.bench_load import (
    PROJECT_ROOT,
    RATE,
    _machine,
    _progress,
    _speech,
    _wav,
    running,
)
from utilities.env import env_float, env_int, env_str
from utilities.machine import load_average
from utilities.markdown_sections import replace_section

DEVICE = "stream-bench"
ENROLL_SECONDS = 8.0
GAP_SECONDS = 1.0
LEAD_SECONDS = 0.5
FRAME_SECONDS = 0.1
#: Kept up: the finals' lag p95 at most this, and partials at least this share of expected.
MAX_FINAL_LAG = 1.0
MIN_PARTIAL_SHARE = 0.8


@dataclass(frozen=True)
class Plan:
    speakers: int
    probe_seconds: float
    stream_seconds: float
    levels: tuple[int, ...]
    speed: float
    workers: int

    @classmethod
    def from_env(cls) -> Plan:
        levels = env_str("STREAM_LEVELS", "1,2,4,8,12,16")
        return cls(
            speakers=env_int("STREAM_SPEAKERS", 10),
            probe_seconds=env_float("PROBE_SECONDS", 5.0),
            stream_seconds=env_float("STREAM_SECONDS", 30.0),
            levels=tuple(int(level) for level in levels.split(",")),
            speed=env_float("STREAM_SPEED", 1.0),
            workers=env_int("STREAM_WORKERS", 2),
        )


@dataclass(frozen=True)
class Probe:
    label: str
    samples: np.ndarray


@dataclass
class Stream:
    """What one stream sends (its audio and where each speaker's speech lies) and gets."""

    audio: np.ndarray
    #: (first sample's second, last sample's second, speaker label) per utterance.
    truth: list[tuple[float, float, str]]
    sent_at: list[float] = field(default_factory=list)
    #: (wall time received, event).
    events: list[tuple[float, dict]] = field(default_factory=list)

    @classmethod
    def of(cls, probes: list[Probe], seconds: float | None = None) -> Stream:
        """The probes in order, after a lead of silence and each followed by a gap; cut
        after `seconds` of audio (then the probes repeat)."""
        parts = [np.zeros(int(LEAD_SECONDS * RATE), np.float32)]
        truth, at, index = [], LEAD_SECONDS, 0
        while index < len(probes) if seconds is None else at < seconds:
            probe = probes[index % len(probes)]
            truth.append((at, at + len(probe.samples) / RATE, probe.label))
            parts += [probe.samples, np.zeros(int(GAP_SECONDS * RATE), np.float32)]
            at += len(probe.samples) / RATE + GAP_SECONDS
            index += 1
        return cls(audio=np.concatenate(parts), truth=truth)

    @property
    def seconds(self) -> float:
        return len(self.audio) / RATE

    def of_type(self, kind: str) -> list[tuple[float, dict]]:
        return [(wall, event) for wall, event in self.events if event["type"] == kind]

    def first_correct(self) -> list[tuple[float | None, bool]]:
        """Per utterance: seconds from its start to its first partial naming its speaker (None
        when none did), and whether its very first partial did."""
        partials = [event for _, event in self.of_type("partial")]
        found = []
        for index, (start, _, label) in enumerate(self.truth):
            until = self.truth[index + 1][0] if index + 1 < len(self.truth) else math.inf
            mine = [p for p in partials if start <= p["at"] < until]
            right = [p["at"] - start for p in mine if p["voice_name"] == label]
            first_right = bool(mine) and mine[0]["voice_name"] == label
            found.append((right[0] if right else None, first_right))
        return found

    def final_lags(self) -> list[float]:
        frame = int(FRAME_SECONDS * RATE)
        lags = []
        for wall, event in self.of_type("final"):
            index = min(max(0, math.ceil(event["end"] * RATE / frame) - 1), len(self.sent_at) - 1)
            lags.append(wall - self.sent_at[index])
        return lags


async def drive(stream: Stream, url: str, token: str, speed: float) -> None:
    """Send the stream's audio at `speed` x real time, stop, and collect events until the
    close."""
    pcm = (np.clip(stream.audio, -1, 1) * 32767).astype("<i2")
    frame = int(FRAME_SECONDS * RATE)
    pcm = np.pad(pcm, (0, -len(pcm) % frame))
    headers = {"Authorization": f"Bearer {token}"}
    async with connect(url, additional_headers=headers, open_timeout=60) as socket:

        async def receive() -> None:
            async for message in socket:
                stream.events.append((time.monotonic(), json.loads(message)))

        reader = asyncio.create_task(receive())
        started = time.monotonic()
        for index in range(len(pcm) // frame):
            delay = started + index * FRAME_SECONDS / speed - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            await socket.send(pcm[index * frame : (index + 1) * frame].tobytes())
            stream.sent_at.append(time.monotonic())
        await socket.send(json.dumps({"type": "stop"}))
        await asyncio.wait_for(reader, 120)
    if socket.close_code != 1000:
        raise SystemExit(f"a stream closed with {socket.close_code} {socket.close_reason}")


async def run_streams(streams: list[Stream], url: str, token: str, speed: float) -> None:
    await asyncio.gather(*(drive(stream, url, token, speed) for stream in streams))


@dataclass
class Level:
    streams: int
    compute_ms: list[float]
    lags: list[float]
    partials: int
    utterances: int
    seconds: float  # of audio, all streams together

    @property
    def partial_rate(self) -> float:
        """Partials per stream-second."""
        return self.partials / self.seconds

    def expected_rate(self, per_utterance: float) -> float:
        """The partials per stream-second of streams as fast as a lone one: every probe is
        as long, so each utterance should get as many partials as the lone stream's did."""
        return per_utterance * self.utterances / self.seconds

    def kept_up(self, per_utterance: float) -> bool:
        share = self.partial_rate / self.expected_rate(per_utterance)
        return pct(self.lags, 95) <= MAX_FINAL_LAG and share >= MIN_PARTIAL_SHARE


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else math.nan


def measure(streams: list[Stream]) -> Level:
    return Level(
        streams=len(streams),
        compute_ms=[e["compute_ms"] for s in streams for _, e in s.of_type("partial")],
        lags=[lag for s in streams for lag in s.final_lags()],
        partials=sum(len(s.of_type("partial")) for s in streams),
        utterances=sum(len(s.truth) for s in streams),
        seconds=sum(s.seconds for s in streams),
    )


# ----------------------------------------------------------------------------- the run


def material(plan: Plan) -> tuple[list[tuple[str, bytes]], list[Probe]]:
    """(label, enrollment WAV) and the probe of each speaker."""
    long = _speech(plan.speakers, ENROLL_SECONDS + plan.probe_seconds)
    labels = [f"speaker-{index}" for index in range(plan.speakers)]
    cut = int(ENROLL_SECONDS * RATE)
    enrollments = [(label, _wav(s[:cut])) for label, s in zip(labels, long, strict=True)]
    return enrollments, [Probe(label, s[cut:]) for label, s in zip(labels, long, strict=True)]


def set_up(service, enrollments: list[tuple[str, bytes]]) -> str:
    token = service.manage("create_tenant", "stream-bench").strip().splitlines()[-1]
    service.call("POST", "/v1/voiceprint/devices", token, {"device_id": DEVICE})
    for label, wav in enrollments:
        service.call("POST", "/v1/voiceprint/voices/create", token, wav,
                     **{"Content-Type": "audio/wav", "X-Device-Id": DEVICE,
                        "X-Voice-Name": label})  # fmt: skip
    return token


def run(plan: Plan, var_dir: Path) -> tuple[Stream, list[Level]]:
    enrollments, probes = material(plan)
    env = {"VOICEPRINT_WEB_WORKERS": str(plan.workers),
           "VOICEPRINT_STREAM_MAX_PER_TENANT": "1000"}  # fmt: skip
    with running(var_dir, **env) as service:
        _progress(f"service on port {service.port}, {plan.workers} web processes; enrolling "
                  f"{len(enrollments)} speakers")  # fmt: skip
        token = set_up(service, enrollments)
        url = f"ws://127.0.0.1:{service.port}/v1/voiceprint/stream?device_id={DEVICE}"
        first = Stream.of(probes)
        _progress(f"first partials: 1 stream, {first.seconds:.0f} s of audio ...")
        asyncio.run(run_streams([first], url, token, plan.speed))
        levels = []
        for count in plan.levels:
            streams = [Stream.of(probes[i % len(probes):] + probes[: i % len(probes)],
                                 plan.stream_seconds) for i in range(count)]  # fmt: skip
            asyncio.run(run_streams(streams, url, token, plan.speed))
            level = measure(streams)
            _progress(
                f"N={count:<3} partial p50 {pct(level.compute_ms, 50):5.0f} ms  p95 "
                f"{pct(level.compute_ms, 95):5.0f} ms  final lag p95 "
                f"{pct(level.lags, 95):5.2f} s  {level.partial_rate:.2f} partials/s"
            )
            levels.append(level)
    return first, levels


# ----------------------------------------------------------------------------- the report


def render(plan: Plan, first: Stream, levels: list[Level], machine: dict[str, str]) -> str:
    found = first.first_correct()
    latencies = [seconds for seconds, _ in found if seconds is not None]
    first_right = sum(right for _, right in found)
    alone = measure([first])
    per_utterance = alone.partials / alone.utterances
    lines = [
        "# Streaming benchmark (`make bench-stream`)",
        "",
        f"`WS /v1/voiceprint/stream` through the production server of `make run` "
        f"({plan.workers} web processes, engine `ge2e`, one torch thread per process, embedded "
        f"PostgreSQL); {plan.speakers} LibriSpeech speakers enrolled on one device "
        f"({ENROLL_SECONDS:g} s each); streams of {plan.probe_seconds:g} s of each speaker's "
        f"other speech, {GAP_SECONDS:g} s of silence between, sent in "
        f"{FRAME_SECONDS * 1000:g} ms frames at {plan.speed:g}x real time. The load generator, "
        f"the database and the server share the machine.",
        "",
        f"Machine: {machine['cpu']}, {machine['cores']} cores (shared with other work); "
        f"load average {machine['load_before']} before, {machine['load_after']} after; "
        f"{machine['date']}.",
        "",
        f"**First partials** (one stream, {len(found)} utterances): the first partial naming "
        f"the right speaker came {pct(latencies, 50):.2f} s (median), {pct(latencies, 90):.2f} s "
        f"(p90) of audio after the utterance's first sample (target <= 1.2 s); "
        f"{len(latencies)}/{len(found)} utterances had one, and the very first partial was "
        f"right in {first_right}/{len(found)}. Compute per partial, alone: "
        f"{pct(alone.compute_ms, 50):.0f} ms median, {pct(alone.compute_ms, 95):.0f} ms p95 "
        f"(target <= 50 ms); {per_utterance:.1f} partials per utterance.",
        "",
        f"**Concurrent streams**, each {plan.stream_seconds:g} s: *final lag* is the wall time "
        f"from sending the frame holding the final's `end` (where 600 ms of silence closed the "
        f"utterance) to receiving the final; *partials/s* received per stream-second, against "
        f"*expected*: as many per utterance as the lone stream got. Kept up: final lag p95 "
        f"<= {MAX_FINAL_LAG:g} s and partials >= {MIN_PARTIAL_SHARE:.0%} of expected.",
        "",
        "| streams | partial p50 ms | partial p95 ms | final lag p50 s | final lag p95 s "
        "| partials/s | expected | share | kept up |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for level in levels:
        expected = level.expected_rate(per_utterance)
        lines.append(
            f"| {level.streams} | {pct(level.compute_ms, 50):.0f} "
            f"| {pct(level.compute_ms, 95):.0f} | {pct(level.lags, 50):.2f} "
            f"| {pct(level.lags, 95):.2f} | {level.partial_rate:.2f} "
            f"| {expected:.2f} | {level.partial_rate / expected:.0%} "
            f"| {'yes' if level.kept_up(per_utterance) else 'no'} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m config.bench_stream",
                                     description=__doc__.split("\n")[0])  # fmt: skip
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "docs" / "BENCHMARKS.md")
    parser.add_argument("--var-dir", type=Path, help="keep the service's files here")
    args = parser.parse_args(argv)
    plan = Plan.from_env()
    machine = _machine()
    with tempfile.TemporaryDirectory(prefix="bench-stream-") as scratch:
        first, levels = run(plan, args.var_dir or Path(scratch) / "service")
    machine["load_after"] = load_average()
    replace_section(args.out, "stream", render(plan, first, levels, machine))
    _progress(f"written: the 'stream' section of {args.out}")


if __name__ == "__main__":
    main()

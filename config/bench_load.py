"""Load benchmark: `python -m config.bench_load [--quick] [--out docs/BENCHMARKS.md]`
(`make bench-load`).

Concurrent 1:N identify of 3 s real speech clips through HTTP, against the production server
of `make run` (config.serve: gunicorn with the project's configuration, the embedded
PostgreSQL) on its own port and database folder:

1. in-process: the web processes embed, one request at a time (VOICEPRINT_BATCH_MAX=1), then
   micro-batched per process (engine.batching, with the environment's batch settings);
2. Celery: the same server with CELERY_BROKER_URL on the local Redis, and 1, then 2 workers
   (`make worker`'s thread pool), on a private queue.

Each configuration is driven at each concurrency (closed loop: every client sends its next
request when the last one is answered) for a fixed time after a warm-up. Beside it, in the
same run (before and after the service runs, as the machine's load drifts), the raw engine:
as many processes as cores, each embedding one prepared clip at a time, as fast as it can.
The table: requests/s, p50/p95/p99, ratio to that raw throughput, and the batch sizes the
service's embeddings ran in (from its /metrics). Everything runs with one torch thread per
process (VOICEPRINT_TORCH_THREADS=1, see the Makefile). Written as the "load" section of the
output file (utilities.markdown_sections).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import http.client
import io
import json
import multiprocessing
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from utilities.machine import cpu_model, load_average
from utilities.markdown_sections import replace_section

PROJECT_ROOT = Path(__file__).resolve().parents[1]
LIBRISPEECH = "librispeech-train-clean-100"
RATE = 16_000
ENGINE = "ge2e"
CLIP_SECONDS = 3.0
ENROLL_SECONDS = 8.0
#: Enrolled voices on the bench device, and probe speakers (the enrolled ones and others).
VOICES = 4
PROBES = 12
DEVICE = "bench-device"
IDENTIFY_PATH = "/v1/voiceprint/voices/identify"
#: The local Redis database the Celery configurations use (the tests use 15).
REDIS_URL = "redis://127.0.0.1:6379/14"
START_TIMEOUT = 240


@dataclass(frozen=True)
class Plan:
    concurrencies: tuple[int, ...]
    #: Seconds measured per point, after `warmup` seconds of the same load.
    seconds: float
    warmup: float
    worker_counts: tuple[int, ...]
    raw_seconds: float


FULL = Plan(concurrencies=(1, 4, 8, 16), seconds=20, warmup=4, worker_counts=(1, 2),
            raw_seconds=15)  # fmt: skip
QUICK = Plan(concurrencies=(1, 4), seconds=2, warmup=1, worker_counts=(1,), raw_seconds=2)


@dataclass
class Point:
    configuration: str
    concurrency: int
    seconds: float
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    #: Embeddings and the sum of their batch sizes, from the server's /metrics.
    embedded: float = 0.0
    batch_sum: float = 0.0

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latencies, q)) if self.latencies else float("nan")

    @property
    def mean_batch(self) -> float:
        return self.batch_sum / self.embedded if self.embedded else float("nan")


# ------------------------------------------------------------------------------ audio


def _speech(count: int, seconds: float, *, last_first: bool = False) -> list[np.ndarray]:
    """`seconds` of each of `count` LibriSpeech speakers long enough for it (file order, or
    from the last file backwards), from 0.25 s in."""
    import soundfile

    folder = _shared_audio() / LIBRISPEECH
    found = []
    for path in sorted(folder.glob("*.flac"), reverse=last_first):
        if soundfile.info(path).duration >= seconds + 0.5:
            samples, rate = soundfile.read(path, dtype="float32")
            assert rate == RATE, path
            found.append(samples[RATE // 4 : RATE // 4 + int(seconds * RATE)])
        if len(found) == count:
            return found
    raise SystemExit(f"fewer than {count} utterances of {seconds} s in {folder}")


def _shared_audio() -> Path:
    shared = os.environ.get("VOICEPRINT_SHARED_DIR")
    folder = (Path(shared) if shared else PROJECT_ROOT.parent / "shared") / "audio"
    if not (folder / LIBRISPEECH).is_dir():
        raise SystemExit(f"no shared speech in {folder} (set VOICEPRINT_SHARED_DIR)")
    return folder


def _wav(samples: np.ndarray) -> bytes:
    import soundfile

    buffer = io.BytesIO()
    soundfile.write(buffer, samples, RATE, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


@dataclass(frozen=True)
class Material:
    #: (speaker label, WAV) enrolled on the bench device.
    enrollments: list[tuple[str, bytes]]
    #: 3 s WAV probes: other clips of the enrolled speakers, then strangers.
    probes: list[bytes]

    @classmethod
    def load(cls) -> Material:
        long = _speech(VOICES, ENROLL_SECONDS + CLIP_SECONDS)
        enrolled = [_wav(s[: int(ENROLL_SECONDS * RATE)]) for s in long]
        again = [_wav(s[int(ENROLL_SECONDS * RATE) :]) for s in long]
        strangers = [_wav(s) for s in _speech(PROBES - VOICES, CLIP_SECONDS, last_first=True)]
        labels = [f"speaker-{i}" for i in range(VOICES)]
        return cls(enrollments=list(zip(labels, enrolled, strict=True)), probes=again + strangers)


# ------------------------------------------------------------------------- raw engine


def _raw_process(probes: list[bytes], seconds: float, ready, start, results) -> None:
    """One process: load the engine, prepare the clips, then embed one at a time until
    `seconds` after `start`; puts the count."""
    os.environ["VOICEPRINT_TORCH_THREADS"] = "1"
    import torch

    from engine import EngineSettings, get_engine, prepare_audio

    torch.set_num_threads(1)
    speaker = get_engine(ENGINE)
    waveforms = [prepare_audio(p, EngineSettings()).waveform for p in probes]
    for waveform in waveforms[:3]:  # warm-up
        speaker.embed(waveform)
    ready.release()
    start.wait()
    done, deadline = 0, time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        speaker.embed(waveforms[done % len(waveforms)])
        done += 1
    results.put(done)


def raw_throughput(probes: list[bytes], processes: int, seconds: float) -> float:
    """Clips per second of `processes` raw engine processes together."""
    context = multiprocessing.get_context("spawn")
    ready, start, results = context.Semaphore(0), context.Event(), context.Queue()
    workers = [
        context.Process(target=_raw_process, args=(probes, seconds, ready, start, results))
        for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    for _ in workers:
        ready.acquire()
    start.set()
    total = sum(results.get(timeout=seconds + 120) for _ in workers)
    for worker in workers:
        worker.join()
    return total / seconds


# --------------------------------------------------------------------------- the service


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Service:
    """`python -m config.serve` on its own port and var folder (database, media, metrics)."""

    def __init__(self, var_dir: Path, **env: str):
        self.var_dir, self.port = var_dir, _free_port()
        self.env = {
            **os.environ,
            "VOICEPRINT_VAR_DIR": str(var_dir),
            "VOICEPRINT_PGDATA": str(var_dir / "pgdata"),
            "VOICEPRINT_ENGINE": ENGINE,
            "VOICEPRINT_TORCH_THREADS": "1",
            "VOICEPRINT_MODEL_DOWNLOAD": "0",
            # The bench is one tenant sending as fast as it can: not what the limits are for.
            "VOICEPRINT_RATE_LIMIT": "off",
            "VOICEPRINT_TOKEN_RATE_LIMIT": "off",
            "VOICEPRINT_AUTH_FAILURE_LIMIT": "off",
            "VOICEPRINT_CACHE_KEY_PREFIX": f"bench-load-{uuid.uuid4().hex[:8]}",
            "LOG_FORMAT": "json",
            **env,
        }
        for name in ("DATABASE_URL", "VOICEPRINT_METRICS_TOKEN", "PROMETHEUS_MULTIPROC_DIR"):
            self.env.pop(name, None)
        if "CELERY_BROKER_URL" not in env:
            self.env.pop("CELERY_BROKER_URL", None)
        self.process: subprocess.Popen | None = None
        self.workers: list[subprocess.Popen] = []

    @property
    def log(self) -> Path:
        return self.var_dir / "service.log"

    def start(self) -> Service:
        self.var_dir.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "config.serve", "--port", str(self.port)]
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=self.env,
                                            stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
        deadline = time.monotonic() + START_TIMEOUT
        while not self._answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the service did not start:\n{self._tail(self.log)}")
            time.sleep(0.5)
        return self

    def _answers(self) -> bool:
        try:  # 503 (degraded: no worker yet) is an answer too
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
            connection.request("GET", "/healthz")
            return connection.getresponse().status in (200, 503)
        except OSError:
            return False

    def start_worker(self, queue: str) -> None:
        log_path = self.var_dir / f"worker-{len(self.workers)}.log"
        command = [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=threads",
                   "--concurrency=8", "-Q", queue, "--without-gossip", "--without-mingle",
                   f"--hostname=bench-{len(self.workers)}-{uuid.uuid4().hex[:6]}@%h"]  # fmt: skip
        with open(log_path, "ab") as log:
            worker = subprocess.Popen(command, cwd=PROJECT_ROOT, env=self.env, stdout=log,
                                      stderr=subprocess.STDOUT)  # fmt: skip
        self.workers.append(worker)
        deadline = time.monotonic() + START_TIMEOUT
        while " ready." not in log_path.read_text(errors="replace"):  # the engine is loaded
            if worker.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the worker did not start:\n{self._tail(log_path)}")
            time.sleep(0.2)

    def stop(self) -> None:
        for process in [*self.workers, self.process]:
            if process is not None and process.poll() is None:
                process.terminate()
        for process in [*self.workers, self.process]:
            if process is not None:
                try:
                    process.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    process.kill()

    def manage(self, *args: str) -> str:
        done = subprocess.run([sys.executable, "manage.py", *args], cwd=PROJECT_ROOT,
                              env=self.env, capture_output=True, text=True)  # fmt: skip
        if done.returncode:
            raise SystemExit(f"manage.py {args[0]} failed:\n{done.stderr[-2000:]}")
        return done.stdout

    def call(self, method: str, path: str, token: str, body: bytes | dict | None = None,
             **headers: str) -> dict:  # fmt: skip
        """One API call; its envelope's data (SystemExit when it is an error)."""
        if isinstance(body, dict):
            body, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
        request = urllib.request.Request(
            self.url(path),
            data=body,
            method=method,
            headers={"Authorization": f"Bearer {token}", **headers},
        )
        with urllib.request.urlopen(request, timeout=120) as response:
            reply = json.loads(response.read())
        if reply["code"] != 0:
            raise SystemExit(f"{method} {path}: {reply}")
        return reply["data"]

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def batch_counts(self) -> tuple[float, float]:
        """(embeddings, sum of their batch sizes) from /metrics, all processes together."""
        with urllib.request.urlopen(self.url("/metrics"), timeout=30) as response:
            text = response.read().decode()
        totals = {"count": 0.0, "sum": 0.0}
        for kind, value in re.findall(
            r"^voiceprint_embedding_batch_size_(count|sum)\{[^}]*\} (\S+)$", text, re.MULTILINE
        ):
            totals[kind] += float(value)
        return totals["count"], totals["sum"]

    @staticmethod
    def _tail(path: Path) -> str:
        return path.read_text(errors="replace")[-3000:] if path.exists() else "(no log)"


@contextmanager
def running(var_dir: Path, **env: str) -> Iterator[Service]:
    service = Service(var_dir, **env)
    try:
        yield service.start()
    finally:
        service.stop()


def set_up_tenant(service: Service, material: Material) -> str:
    """A tenant, its token, the bench device and the enrolled voices; returns the token."""
    token = (
        service.manage("create_tenant", f"bench-{uuid.uuid4().hex[:6]}").strip().splitlines()[-1]
    )
    service.call("POST", "/v1/voiceprint/devices", token, {"device_id": DEVICE})
    for label, wav in material.enrollments:
        service.call("POST", "/v1/voiceprint/voices/create", token, wav,
                     **{"Content-Type": "audio/wav", "X-Device-Id": DEVICE,
                        "X-Voice-Name": label})  # fmt: skip
    return token


# ----------------------------------------------------------------------------- the load


def drive(service: Service, token: str, probes: list[bytes], point: Point, warmup: float) -> Point:
    """`point.concurrency` clients identifying back to back for warmup + point.seconds; the
    requests that start after the warm-up and end within the window count."""
    begin = time.perf_counter() + warmup
    end = begin + point.seconds
    lock = threading.Lock()
    before = service.batch_counts()
    measured_before: list[tuple[float, float]] = []

    def client(index: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", service.port, timeout=120)
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "audio/wav",
                   "X-Device-Id": DEVICE}  # fmt: skip
        sent = index
        while (started := time.perf_counter()) < end:
            try:
                connection.request("POST", IDENTIFY_PATH, probes[sent % len(probes)], headers)
                reply = json.loads(connection.getresponse().read())
                ok = reply["code"] == 0
            except (OSError, http.client.HTTPException, ValueError):
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", service.port, timeout=120)
                ok = False
            finished = time.perf_counter()
            sent += 1
            if begin <= started and finished <= end:
                with lock:
                    if ok:
                        point.latencies.append(finished - started)
                    else:
                        point.errors += 1
        connection.close()

    def snapshot_at_begin() -> None:
        time.sleep(max(0.0, begin - time.perf_counter()))
        measured_before.append(service.batch_counts())

    threads = [threading.Thread(target=client, args=(i,)) for i in range(point.concurrency)]
    snapshot = threading.Thread(target=snapshot_at_begin)
    for thread in [*threads, snapshot]:
        thread.start()
    for thread in [*threads, snapshot]:
        thread.join()
    after = service.batch_counts()
    start_counts = measured_before[0] if measured_before else before
    point.embedded, point.batch_sum = (after[0] - start_counts[0], after[1] - start_counts[1])
    return point


def run_configuration(
    service: Service, token: str, material: Material, name: str, plan: Plan
) -> list[Point]:
    points = []
    for concurrency in plan.concurrencies:
        point = drive(service, token, material.probes, Point(name, concurrency, plan.seconds),
                      plan.warmup)  # fmt: skip
        _progress(
            f"{name:>22} c={concurrency:<2} {point.rate:6.1f} req/s  p50 "
            f"{point.percentile(50) * 1000:5.0f} ms  p99 {point.percentile(99) * 1000:5.0f} ms"
            f"  batch {point.mean_batch:4.1f}  errors {point.errors}"
        )
        points.append(point)
    return points


def _progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- the report


def render(points: list[Point], raw: tuple[float, float], machine: dict[str, str],
           plan: Plan) -> str:  # fmt: skip
    from engine.settings import EngineSettings

    baseline = (raw[0] + raw[1]) / 2
    batching = EngineSettings.from_env()
    lines = [
        "# Load benchmark (`make bench-load`)",
        "",
        f"Concurrent `POST {IDENTIFY_PATH}` of 3 s real speech clips ({PROBES} LibriSpeech "
        f"speakers, {VOICES} of them enrolled on the device), engine `{ENGINE}`, one torch "
        f"thread per process, through the production server of `make run` (gunicorn, "
        f"VOICEPRINT_WEB_WORKERS x VOICEPRINT_WEB_THREADS at their defaults, embedded "
        f"PostgreSQL) and through it with Celery workers (thread pool of 8) on the local Redis. "
        f"Closed loop: each client sends its next request when the last is answered; "
        f"{plan.seconds:g} s measured per row after {plan.warmup:g} s of warm-up. The load "
        f"generator, the database and Redis run on the same machine.",
        "",
        f"Raw engine, the baseline: {machine['cores']} processes (one per core), each embedding "
        f"one prepared 3 s clip at a time: {raw[0]:.1f} clips/s before the service runs, "
        f"{raw[1]:.1f} after; ratios are to their mean, {baseline:.1f}/s. *batch*: mean size of "
        f"the batch a request's embedding ran in (engine.batching), from the server's /metrics; "
        f"batching: VOICEPRINT_BATCH_MAX={batching.batch_max}, "
        f"VOICEPRINT_BATCH_WAIT_MS={batching.batch_wait_ms:g}.",
        "",
        f"Machine: {machine['cpu']}, {machine['cores']} cores (shared with other work); "
        f"load average {machine['load_before']} before, {machine['load_after']} after; "
        f"{machine['date']}.",
        "",
        "| configuration | concurrency | requests/s | x raw | p50 ms | p95 ms | p99 ms "
        "| p99/p50 | batch | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for p in points:
        p50 = p.percentile(50)
        lines.append(
            f"| {p.configuration} | {p.concurrency} | {p.rate:.1f} | {p.rate / baseline:.2f} "
            f"| {p50 * 1000:.0f} | {p.percentile(95) * 1000:.0f} | {p.percentile(99) * 1000:.0f} "
            f"| {p.percentile(99) / p50:.2f} | {p.mean_batch:.2f} | {p.errors} |"
        )
    return "\n".join(lines) + "\n"


def _machine() -> dict[str, str]:
    return {"cpu": cpu_model(), "cores": str(os.cpu_count()), "load_before": load_average(),
            "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")}  # fmt: skip


# ------------------------------------------------------------------------------- main


def run(plan: Plan, var_root: Path) -> tuple[list[Point], tuple[float, float]]:
    material = Material.load()
    processes = os.cpu_count() or 1
    _progress(f"raw engine, {processes} processes, {plan.raw_seconds:g} s ...")
    raw_before = raw_throughput(material.probes, processes, plan.raw_seconds)
    _progress(f"raw engine: {raw_before:.1f} clips/s")
    points: list[Point] = []
    var_dir = var_root / "service"  # one database for every configuration
    token = None
    # Batching off first: the same server embedding one request at a time, for comparison.
    for name, env in (("in-process, no batching", {"VOICEPRINT_BATCH_MAX": "1"}),
                      ("in-process", {})):  # fmt: skip
        with running(var_dir, **env) as service:
            _progress(f"{name}: service on port {service.port}")
            token = token or set_up_tenant(service, material)
            points += run_configuration(service, token, material, name, plan)
    queue = f"bench-load-{uuid.uuid4().hex[:8]}"
    celery_env = {"CELERY_BROKER_URL": REDIS_URL, "CELERY_TASK_DEFAULT_QUEUE": queue}
    with running(var_dir, **celery_env) as service:
        for count in plan.worker_counts:
            while len(service.workers) < count:
                service.start_worker(queue)
            name = f"celery, {count} worker" + ("s" if count > 1 else "")
            points += run_configuration(service, token, material, name, plan)
    _progress(f"raw engine again, {plan.raw_seconds:g} s ...")
    raw_after = raw_throughput(material.probes, processes, plan.raw_seconds)
    _progress(f"raw engine: {raw_after:.1f} clips/s")
    return points, (raw_before, raw_after)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m config.bench_load",
                                     description=__doc__.split("\n")[0])  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="seconds, not minutes (plumbing)")
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "docs" / "BENCHMARKS.md")
    parser.add_argument("--var-dir", type=Path, help="keep the service's files here")
    parser.add_argument("--seconds", type=float, help="seconds measured per row")
    parser.add_argument("--concurrency", help="comma-separated, e.g. 1,8")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    if args.seconds:
        plan = dataclasses.replace(plan, seconds=args.seconds)
    if args.concurrency:
        levels = tuple(int(level) for level in args.concurrency.split(","))
        plan = dataclasses.replace(plan, concurrencies=levels)
    machine = _machine()
    with tempfile.TemporaryDirectory(prefix="bench-load-") as scratch:
        points, raw = run(plan, args.var_dir or Path(scratch))
    machine["load_after"] = load_average()
    replace_section(args.out, "load", render(points, raw, machine, plan))
    _progress(f"written: the 'load' section of {args.out}")


if __name__ == "__main__":
    main()

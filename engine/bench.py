"""Speed benchmark of the speaker engines: `python -m engine.bench [--out docs/BENCHMARKS.md]`.

Each engine is measured in a fresh subprocess so that its peak RSS is its own. The
3D-Speaker engines run on random-weight checkpoints of the real architectures (speed does
not depend on the weights' values), built once into a temporary model directory, with
ModelScope's example trial (real speech) as its examples/*.wav for the int8 check; each is
measured in fp32 and again with VOICEPRINT_ONNX_INT8=1, and the cosine between the two
embeddings of each clip is reported. Clips are cut from the shared real speech
(../shared/audio); the audio pipeline (decode, resample, VAD: engine.audio.prepare_audio) is
timed on the same clip as 16 kHz mono WAV and as 44.1 kHz stereo WAV, and compared with the
model time.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from utilities.machine import cpu_model, load_average
from utilities.markdown_sections import replace_section

SHARED_AUDIO = Path(__file__).resolve().parents[1].parent / "shared" / "audio"
CLIP_SECONDS = (3, 10)
ENGINES = ("ge2e", "campplus", "eres2net", "eres2netv2")
#: Engines measured a second time with VOICEPRINT_ONNX_INT8=1.
INT8_ENGINES = ("campplus", "eres2net", "eres2netv2")
RATE = 16_000


# ----------------------------------------------------------------------------- helpers


def _timed(fn: Callable[[], Any], repeats: int) -> tuple[float, float]:
    """Best wall and CPU (process_time, all threads) seconds of `repeats` calls.

    The minimum, not the median: on a shared machine the best run is the one least
    disturbed by other processes, which is the number we want to compare."""
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return min(walls), min(cpus)


def _status_mib(field: str) -> float:
    """VmHWM (peak RSS) or VmRSS of this process, from /proc/self/status.

    Not getrusage's ru_maxrss: Linux carries it across fork+exec, so a worker would
    report at least the parent's RSS at the time of the fork."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # not Linux: best effort


def _speech_source() -> tuple[np.ndarray, str]:
    """The first shared LibriSpeech utterance long enough for the longest clip."""
    import soundfile as sf

    folder = SHARED_AUDIO / "librispeech-train-clean-100"
    for path in sorted(folder.glob("*.flac")):
        if sf.info(path).duration >= max(CLIP_SECONDS) + 0.5:
            wave, rate = sf.read(path, dtype="float32")
            assert rate == RATE, path
            return wave, path.name
    raise SystemExit(f"no utterance of {max(CLIP_SECONDS)} s under {folder}")


def _wav_bytes(wave: np.ndarray, rate: int, channels: int) -> bytes:
    import soundfile as sf
    import soxr

    if rate != RATE:
        wave = soxr.resample(wave, RATE, rate)
    if channels > 1:
        wave = np.repeat(wave[:, None], channels, axis=1)
    buffer = io.BytesIO()
    sf.write(buffer, wave, rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def _example_trial() -> list[Path]:
    """ModelScope's example trial for the 3D-Speaker zh-cn models (real Mandarin speech)."""
    return sorted((SHARED_AUDIO / "zh" / "test" / "3d-speaker").glob("*_cn_16k.wav"))


def _load(name: str, model_root: str) -> Any:
    from engine.settings import EngineSettings

    if name == "ge2e":
        from engine.ge2e import GE2EEngine

        return GE2EEngine()
    from engine import speaker3d

    settings = EngineSettings(model_dir=model_root)
    return speaker3d.load_engine(speaker3d.SPECS[name], settings)


# ------------------------------------------------------------------------------ workers


def _engine_worker(name: str, model_root: str, repeats: int) -> dict[str, Any]:
    import torch

    from engine.audio import prepare_audio
    from engine.settings import EngineSettings

    speech, source = _speech_source()
    wall = time.perf_counter()
    engine = _load(name, model_root)
    result: dict[str, Any] = {
        "engine": name,
        "runtime": engine.runtime_status(),
        "int8_requested": os.environ.get("VOICEPRINT_ONNX_INT8") == "1",
        "load_s": time.perf_counter() - wall,
        "rss_after_load_mib": _status_mib("VmRSS"),
        "threads": torch.get_num_threads(),
        "source_clip": source,
        "clips": [],
    }
    settings = EngineSettings()
    for seconds in CLIP_SECONDS:
        clip = speech[: seconds * RATE]
        inputs = {"wav16k": _wav_bytes(clip, RATE, 1), "wav44k_stereo": _wav_bytes(clip, 44_100, 2)}
        prepared = prepare_audio(inputs["wav16k"], settings)
        for _ in range(2):  # warm-up: allocator, oneDNN primitives, ORT arenas, numba
            engine.embed(prepared.waveform)
        embedding = engine.embed(prepared.waveform)
        model = _timed(lambda w=prepared.waveform: engine.embed(w), repeats)
        if model[0] < 0.5:  # cheap: more runs make the best one less disturbed by neighbours
            model = min(model, _timed(lambda w=prepared.waveform: engine.embed(w), 10))
        pipeline = {
            key: _timed(lambda data=data: prepare_audio(data, settings), max(repeats, 5))
            for key, data in inputs.items()
        }
        result["clips"].append(
            {
                "seconds": seconds,
                "speech_seconds": prepared.speech_seconds,
                "embedding": embedding.tolist(),  # for the int8 / fp32 cosine
                "model_wall": model[0],
                "model_cpu": model[1],
                "pipeline": {k: {"wall": w, "cpu": c} for k, (w, c) in pipeline.items()},
            }
        )
    result["peak_rss_mib"] = _status_mib("VmHWM")
    return result


Run = Callable[[np.ndarray], np.ndarray]


def _torch_run(module: Any) -> Run:
    import torch

    def run(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return module(torch.from_numpy(x)).numpy()

    return run


def _tries_worker(model_root: str, repeats: int) -> dict[str, list[dict[str, Any]]]:
    """Speed-up tries on the same 3 s / 10 s features, each against its torch baseline:
    every idea for ERes2Net_aug, the runtimes and int8 variants for ERes2NetV2 and CAM++."""
    import torch

    from engine import speaker3d
    from engine.fbank import compute_fbank

    speech, _ = _speech_source()
    feats = {s: compute_fbank(speech[: s * RATE])[None] for s in CLIP_SECONDS}
    results = {}
    for spec in (speaker3d.ERES2NET, speaker3d.ERES2NETV2, speaker3d.CAMPPLUS):
        print(f"bench: tries of {spec.name} ...", file=sys.stderr, flush=True)
        weights = Path(model_root) / spec.model_id / spec.weights_file
        net = speaker3d.build_network(spec)
        net.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
        tries = _tries_for(spec, net, feats[3], full=spec is speaker3d.ERES2NET)
        rows = _measure_tries(tries, feats, repeats)
        if spec is speaker3d.ERES2NET:
            rows.append(_batch_try(_torch_run(_channels_last(spec, net)), feats[3], repeats))
        results[spec.name] = rows
    return results


def _tries_for(
    spec: Any, net: Any, example: np.ndarray, full: bool
) -> list[tuple[str, Callable[[], Run]]]:
    """(label, runner factory) pairs; factories so that each try is built only when measured."""
    tries: list[tuple[str, Callable[[], Run]]] = [
        ("torch fp32, contiguous (baseline)", lambda: _torch_run(net)),
        ("torch channels_last", lambda: _torch_run(_channels_last(spec, net))),
        ("ONNX Runtime, 2 threads (the engines' session)", lambda: _ort(net, 2)),
        ("ONNX Runtime, 1 thread", lambda: _ort(net, 1)),
        ("ONNX Runtime, 2 threads, sequential, spinning", lambda: _ort(net, 2, spin=True)),
        ("ONNX int8 dynamic, all ops (VOICEPRINT_ONNX_INT8)", lambda: _ort_int8(net)),
        ("ONNX int8 dynamic, per channel", lambda: _ort_int8(net, per_channel=True)),
        ("ONNX int8 dynamic, MatMul/Gemm only", lambda: _ort_int8(net, ("MatMul", "Gemm"))),
    ]
    if full:
        tries[1:1] = [("torch.jit trace + freeze", lambda: _torch_run(_jit(net, example)))]
        tries.insert(
            3,
            (
                "torch channels_last, 1 thread",
                lambda: _one_thread(_torch_run(_channels_last(spec, net))),
            ),
        )
    return tries


def _measure_tries(
    tries: list[tuple[str, Callable[[], Run]]], feats: dict[int, np.ndarray], repeats: int
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    reference: dict[int, np.ndarray] = {}
    for label, make in tries:
        run = make()
        row: dict[str, Any] = {"try": label}
        for seconds, x in feats.items():
            out = run(x)  # doubles as the warm-up
            ref = reference.setdefault(seconds, out)  # the first try is the baseline
            wall, cpu = _timed(lambda run=run, x=x: run(x), repeats)
            cos = float((out @ ref.T).item() / (np.linalg.norm(out) * np.linalg.norm(ref)))
            row[f"{seconds}s"] = {"wall": wall, "cpu": cpu, "cosine": cos}
        rows.append(row)
    return rows


def _jit(network: Any, example: np.ndarray) -> Any:
    import torch

    with torch.no_grad():
        return torch.jit.freeze(
            torch.jit.trace(network, torch.from_numpy(example), check_trace=False)
        )


def _one_thread(run: Run) -> Run:
    import torch

    def single(x: np.ndarray) -> np.ndarray:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return run(x)
        finally:
            torch.set_num_threads(threads)

    return single


def _channels_last(spec: Any, network: Any) -> Any:
    import torch

    from engine import speaker3d

    copy = speaker3d.build_network(spec)
    copy.load_state_dict(network.state_dict())
    return copy.to(memory_format=torch.channels_last)


def _ort(network: Any, threads: int, spin: bool = False) -> Run:
    """The engines' session (intra-op spinning off), or with spinning on and sequential
    execution set explicitly."""
    from engine import onnx_runtime

    with tempfile.TemporaryDirectory(prefix="bench-onnx-") as tmp:
        path = Path(tmp) / "network.onnx"
        onnx_runtime.export_onnx(network, path)
        session = (
            _spinning_session(path, threads) if spin else onnx_runtime.ort_session(path, threads)
        )
    return onnx_runtime.session_runner(session)  # the session holds the model in memory


def _spinning_session(path: Path, threads: int) -> Any:
    import onnxruntime as ort

    from engine import onnx_runtime

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = threads
    options.add_session_config_entry("session.intra_op.allow_spinning", "1")
    return ort.InferenceSession(str(path), options, providers=[onnx_runtime.CPU])


def _ort_int8(network: Any, op_types: tuple[str, ...] = (), per_channel: bool = False) -> Run:
    from engine import onnx_runtime

    with tempfile.TemporaryDirectory(prefix="bench-onnx-") as tmp:
        fp32, int8 = Path(tmp) / "network.onnx", Path(tmp) / "network.int8.onnx"
        onnx_runtime.export_onnx(network, fp32)
        onnx_runtime.quantise_int8(fp32, int8, op_types=op_types, per_channel=per_channel)
        session = onnx_runtime.ort_session(int8, 2)
    return onnx_runtime.session_runner(session)


def _batch_try(run: Run, x: np.ndarray, repeats: int) -> dict[str, Any]:
    """Four equal 3 s clips in one forward vs four forwards (CPU has no idle lanes to fill)."""
    batch = np.concatenate([x] * 4)
    run(batch)
    wall, cpu = _timed(lambda: run(batch), repeats)
    per_clip = {"wall": wall / 4, "cpu": cpu / 4}
    return {"try": "torch channels_last, batch of 4 x 3 s (per clip)", "3s": per_clip}


# ------------------------------------------------------------------------------- parent


def _machine() -> dict[str, str]:
    import onnxruntime
    import torch

    return {
        "cpu": cpu_model(),
        "cores": str(os.cpu_count()),
        "providers": ", ".join(onnxruntime.get_available_providers()),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
        "load_avg": load_average(),
    }


def _subprocess(args: list[str], env: dict[str, str]) -> Any:
    cmd = [sys.executable, "-m", "engine.bench", *args]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _build_models(root: Path) -> None:
    from engine import speaker3d

    for spec in speaker3d.SPECS.values():
        path = root / spec.model_id
        speaker3d.write_random_model_dir(spec, path, seed=0, examples=_example_trial())


def run_all(engines: list[str], repeats: int, with_tries: bool) -> dict[str, Any]:
    if not SHARED_AUDIO.is_dir():
        raise SystemExit(f"shared audio absent at {SHARED_AUDIO}: nothing to benchmark on")
    load_start = load_average()
    with tempfile.TemporaryDirectory(prefix="voiceprint-bench-") as tmp:
        root = Path(tmp) / "models"
        _build_models(root)
        env = {
            **os.environ,
            "VOICEPRINT_MODEL_DOWNLOAD": "0",
            "VOICEPRINT_ONNX_CACHE_DIR": str(Path(tmp) / "onnx"),
        }
        results = []
        runs = [(name, False) for name in engines]
        runs += [(name, True) for name in engines if name in INT8_ENGINES]
        for name, int8 in runs:
            print(f"bench: {name}{' int8' if int8 else ''} ...", file=sys.stderr, flush=True)
            worker = ["--worker", name, "--model-root", str(root), "--repeats", str(repeats)]
            int8_env = {"VOICEPRINT_ONNX_INT8": "1" if int8 else "0"}
            results.append(_subprocess(worker, {**env, **int8_env}))
        tries = []
        if with_tries:
            print("bench: eres2net speed-up tries ...", file=sys.stderr, flush=True)
            tries = _subprocess(
                ["--worker", "tries", "--model-root", str(root), "--repeats", str(repeats)], env
            )
    return {
        "machine": _machine(),
        "date": dt.datetime.now().astimezone().isoformat(timespec="minutes"),
        "engines": results,
        "tries": tries,
        "repeats": repeats,
        "load_start": load_start,
    }


# ----------------------------------------------------------------------------- markdown


def _runtime_cell(result: dict[str, Any]) -> str:
    status = result["runtime"]
    cell = status["runtime"]
    if "provider" in status:
        cell += f" {status['provider'].removesuffix('ExecutionProvider')} {status['precision']}"
    if result["int8_requested"] and status.get("precision") != "int8":
        cell += " (int8 refused)"
    return cell


def _cosine_cell(result: dict[str, Any], seconds: int, fp32: dict[str, Any] | None) -> str:
    """The cosine between this (int8) run's embedding of the clip and the fp32 run's."""
    if not result["int8_requested"] or fp32 is None:
        return "-"
    ours = next(c for c in result["clips"] if c["seconds"] == seconds)["embedding"]
    theirs = next(c for c in fp32["clips"] if c["seconds"] == seconds)["embedding"]
    return f"{float(np.dot(ours, theirs)):.4f}"


def _engine_rows(result: dict[str, Any], fp32: dict[str, Any] | None) -> list[str]:
    rows = []
    for clip in result["clips"]:
        seconds, model_wall, model_cpu = clip["seconds"], clip["model_wall"], clip["model_cpu"]
        p16, p44 = clip["pipeline"]["wav16k"], clip["pipeline"]["wav44k_stereo"]
        end_to_end = seconds / (model_wall + p16["wall"])
        rows.append(
            f"| {result['engine']} | {_runtime_cell(result)} | {seconds} s "
            f"| {model_wall:.3f} | {model_cpu / seconds:.3f} | {seconds / model_wall:.1f}x "
            f"| {_cosine_cell(result, seconds, fp32)} "
            f"| {p16['cpu'] * 1000:.1f} ({p16['cpu'] / model_cpu:.1%}) "
            f"| {p44['cpu'] * 1000:.1f} ({p44['cpu'] / model_cpu:.1%}) "
            f"| {end_to_end:.1f}x | {result['load_s']:.1f} "
            f"| {result['rss_after_load_mib']:.0f} / {result['peak_rss_mib']:.0f} |"
        )
    return rows


def _tries_rows(tries: list[dict[str, Any]]) -> list[str]:
    base = tries[0]
    rows = []
    for row in tries:
        cells = [row["try"]]
        for seconds in CLIP_SECONDS:
            m = row.get(f"{seconds}s")
            if m is None:
                cells.append("-")
                continue
            speedup = base[f"{seconds}s"]["wall"] / m["wall"]
            cos = f", cos {m['cosine']:.6f}" if "cosine" in m else ""
            cells.append(
                f"{m['wall']:.3f} s wall / {m['cpu']:.3f} s CPU ({seconds / m['wall']:.1f}x RT,"
                f" {speedup:.2f}x vs baseline{cos})"
            )
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def render(report: dict[str, Any]) -> str:
    m = report["machine"]
    threads = report["engines"][0]["threads"] if report["engines"] else "?"
    fp32_runs = {r["engine"]: r for r in report["engines"] if not r["int8_requested"]}
    lines = [
        "# Engine speed benchmark",
        "",
        "Generated by `python -m engine.bench` (`make bench`); numbers are the best of "
        f"{report['repeats']} runs after a warm-up, each engine in a fresh process.",
        "",
        "| machine | |",
        "|---|---|",
        f"| CPU | {m['cpu']} ({m['cores']} cores) |",
        f"| torch / onnxruntime / python | {m['torch']} / {m['onnxruntime']} / {m['python']} |",
        f"| ONNX Runtime providers available | {m.get('providers', '?')} |",
        f"| torch intra-op threads | {threads} |",
        f"| date | {report['date']} |",
        f"| load average (1/5/15 min) at the start / end | {report['load_start']} / "
        f"{m['load_avg']} |",
        "",
        "3D-Speaker engines run on random-weight checkpoints of the real architectures (speed",
        "does not depend on the weights). Clips are the first 3 s / 10 s of a real LibriSpeech",
        "utterance. *Model* = `engine.embed` on the speech-only waveform (fbank included);",
        "*pipeline* = `engine.audio.prepare_audio` on the WAV bytes (decode, resample, VAD),",
        "in CPU milliseconds and as a share of the model's CPU time. *Runtime* says the",
        "provider and precision: the int8 rows ran with `VOICEPRINT_ONNX_INT8=1`; their",
        "*cos vs fp32* is the cosine between their embedding of the clip and the fp32 row's.",
        "",
        "| engine | runtime | clip | model wall s | model CPU s per audio s | model x real time "
        "| cos vs fp32 "
        "| pipeline 16 kHz mono, CPU ms (share) | pipeline 44.1 kHz stereo, CPU ms (share) "
        "| end to end x real time | load s | RSS after load / peak MiB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for result in report["engines"]:
        lines += _engine_rows(result, fp32_runs.get(result["engine"]))
    lines += [
        "",
        "Targets: pipeline <= 10% of model time; ge2e and campplus >= 30x real time;",
        "the ERes2Net family >= 8x real time on 10 s clips.",
    ]
    tries = report["tries"]
    if tries:
        lines += [
            "",
            "## Speed-up tries",
            "",
            "Same fbank features, the network alone, one utterance per call unless stated; "
            "`cos` is the cosine between the try's embedding and the baseline's.",
        ]
        titles = (
            ("eres2net", "ERes2Net_aug (55 M parameters)"),
            ("eres2netv2", "ERes2NetV2 (17.9 M parameters)"),
            ("campplus", "CAM++ (7.2 M parameters)"),
        )
        for name, title in titles:
            lines += [
                "",
                f"### {title}",
                "",
                "| try | 3 s clip | 10 s clip |",
                "|---|---|---|",
                *_tries_rows(tries[name]),
            ]
        lines += ["", *TRIES_NOTES]
    return "\n".join(lines) + "\n"


#: What the tries table cannot show; kept by hand, checked when the code changed.
TRIES_NOTES = [
    "Notes:",
    "- The engines keep the fastest equivalent runtime, ONNX Runtime for the 3D-Speaker",
    "  models (`VOICEPRINT_ONNX=auto`, the default): exported once per weights file (cached",
    "  by its hash under `VOICEPRINT_ONNX_CACHE_DIR`), checked against torch at every load,",
    "  torch if that fails. `VOICEPRINT_ONNX=0` forces torch, `=1` makes an ONNX failure an",
    "  error. ORT runs with intra-op spinning off, so idle workers burn no CPU; its graph",
    "  optimiser folds BatchNorm into the convolutions, which eager torch cannot.",
    "- int8 is ONNX Runtime's dynamic quantisation (`quantize_dynamic`, weights int8,",
    "  activations quantised at run time): convolutions become `ConvInteger`, which ORT runs",
    "  far slower than its fp32 convolutions on this CPU; per-channel weights are no",
    "  better, and quantising only MatMul/Gemm leaves these convolutional networks as",
    "  they were. The int8 cosines here are on generated weights: real weights have other",
    "  ranges, so the engine measures the cosine again at load, on real speech, and keeps",
    "  fp32 below 0.99.",
    "- The engines table's load time includes the first ONNX export, its check and (int8",
    "  rows) the quantisation and its check (the bench starts from an empty ONNX cache);",
    "  later loads reuse the files.",
    "- Not tried: bf16/fp16 on the CPU; static int8 quantisation (QDQ, calibrated on",
    "  speech per deployment); `torch.jit.optimize_for_inference` (fails on ERes2Net_aug",
    "  with an internal assert in torch 2.13). On a GPU worker",
    "  (`VOICEPRINT_ONNX_PROVIDER=auto|cuda`) none of this matters: not measured here.",
    "- Batching cannot pad utterances of different lengths (padding changes the pooled",
    "  statistics), so `embed_batch` stacks only equal-length inputs; the batch row shows",
    "  what stacking buys when lengths do match.",
    "- The machine is shared: the load average above says how busy it was. Torch's OpenMP",
    "  threads spin-wait and suffer most from other processes; best-of-N numbers are the",
    "  least disturbed ones, and *CPU s* (all threads) moves less with the load than wall.",
]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="write the markdown report here")
    parser.add_argument("--engines", default=",".join(ENGINES))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-tries", action="store_true", help="skip the ERes2Net tries")
    parser.add_argument("--json", type=Path, help="also write the raw numbers here")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--model-root", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker == "tries":
        print(json.dumps(_tries_worker(args.model_root, args.repeats)))
        return
    if args.worker:
        print(json.dumps(_engine_worker(args.worker, args.model_root, args.repeats)))
        return

    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    report = run_all(engines, args.repeats, with_tries=not args.no_tries)
    text = render(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    if args.out:
        replace_section(args.out, "engines", text)
        print(f"wrote {args.out}", file=sys.stderr)
    else:
        print(text)


if __name__ == "__main__":
    main()

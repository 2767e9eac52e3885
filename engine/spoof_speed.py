"""`make bench-spoof-speed`: what anti-spoofing adds to a probe, in docs/BENCHMARKS.md.

    python -m engine.spoof_speed --audio ../shared/audio --out docs/BENCHMARKS.md

For each countermeasure, on one thread as the service runs it (VOICEPRINT_TORCH_THREADS=1)
and on the process's default: the time to score a 3 s probe (as it is scored, and tiled to a
whole window as it was before) and a 10 s clip on its runtime (ONNX Runtime, torch where the
export fails), torch's own time for comparison, and the time
`embed_audio` takes with and without `anti_spoofing` on the 3 s probe (the GE2E engine):
the latency a request pays for the check. Medians of `RUNS` after two warm-up runs.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile

import engine
from engine.audio import decode_audio
from engine.spoofing import split_windows, spoof_detector, tile_window
from utilities.machine import cpu_model, load_average
from utilities.markdown_sections import replace_section

RUNS = 15
SECTION = "spoof-speed"
PROBE = "zh/test/leijun-test-sr-1.wav"


def median_ms(call: Callable[[], object], runs: int = RUNS) -> float:
    for _ in range(2):
        call()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return float(np.median(times))


def measure(audio: Path, threads: int) -> list[str]:
    """Table rows for every countermeasure at `threads` torch/ORT threads (0: default)."""
    engine.configure(engine.EngineSettings(engine="ge2e", torch_threads=threads))
    recording = decode_audio((audio / PROBE).read_bytes())
    probe, clip = recording[: 3 * 16_000], np.resize(recording, 10 * 16_000)
    wav = _wav(probe)
    plain = median_ms(lambda: engine.embed_audio(wav))
    rows = []
    for name in ("aasist-l", "aasist"):
        engine.configure(engine.EngineSettings(engine="ge2e", torch_threads=threads,
                                               spoof_model=name))  # fmt: skip
        detector = spoof_detector(name)
        checked = median_ms(lambda: engine.embed_audio(wav, anti_spoofing=True))
        rows.append(
            f"| {name} | {threads or 'default'} | {detector.runtime} "
            f"| {median_ms(lambda d=detector: d.score(probe)):.0f} "
            f"| {median_ms(lambda d=detector: d.bona_fide_logits(tile_window(probe))):.0f} "
            f"| {median_ms(lambda d=detector: d.score(clip), runs=5):.0f} "
            f"| {median_ms(lambda d=detector: d.torch_logits(split_windows(probe)), runs=5):.0f} "
            f"| {plain:.0f} | {checked:.0f} | {checked - plain:+.0f} |"
        )
    return rows


def _wav(samples: np.ndarray) -> bytes:
    import io

    buffer = io.BytesIO()
    soundfile.write(buffer, samples, 16_000, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def markdown(rows: list[str], *, before: str, after: str) -> str:
    return "\n".join([
        "## Anti-spoofing: what the check costs (`make bench-spoof-speed`)",
        "",
        f"Machine: {cpu_model()}; load average {before} before, {after} after; "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. Medians of {RUNS} runs (5 for "
        "the 10 s clip and torch); probe: 3 s of `zh/test/leijun-test-sr-1.wav`.",
        "",
        "| model | threads | runtime | 3 s probe ms | 3 s tiled to 4.04 s ms | 10 s clip ms "
        "| torch, 3 s ms | embed ms | embed + check ms | added ms |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
        *rows,
        "",
        "*3 s probe*: the probe scored as it is (`engine.spoofing.split_windows`); *tiled*: "
        "the same probe repeated to one 64,600-sample window, as the authors' code (and this "
        "service before) scores it. "
        "*embed*: `engine.embed_audio` of the probe with GE2E (decode, silence removal, "
        "embedding); *embed + check*: the same with `anti_spoofing`, the countermeasure on the "
        "same decoded audio in the same job. Target: under 100 ms added on a 3 s probe.",
    ])  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--audio", type=Path, required=True, help="../shared/audio")
    parser.add_argument("--out", type=Path, required=True, help="docs/BENCHMARKS.md")
    options = parser.parse_args(argv)
    before = load_average()
    rows = [*measure(options.audio, 1), *measure(options.audio, 0)]
    text = markdown(rows, before=before, after=load_average())
    replace_section(options.out, SECTION, text)
    print(text)


if __name__ == "__main__":
    main()

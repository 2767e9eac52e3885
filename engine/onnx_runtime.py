"""ONNX Runtime for the 3D-Speaker networks: the cached export, the execution provider and
the optional int8 copy.

- The fp32 export is cached under VOICEPRINT_ONNX_CACHE_DIR, keyed by the weights' hash,
  and checked against torch at every load (`ONNX_TOLERANCE`).
- VOICEPRINT_ONNX_PROVIDER=auto runs it on CUDA where onnxruntime offers CUDA (the
  onnxruntime-gpu wheel on a machine with a GPU), else on the CPU; `cuda` makes a missing
  CUDA an error (`ProviderUnavailableError`), `cpu` never tries it.
- VOICEPRINT_ONNX_INT8=1 adds a dynamically quantised int8 copy of the graph (cached beside
  the fp32 export). It is used only where its embeddings of real speech (the model
  directory's `examples/*.wav`, which ModelScope ships) keep a cosine of at least
  `INT8_MIN_COSINE` with fp32's; otherwise fp32 runs, with a WARNING and the reason in
  /healthz. int8 is a CPU option: CUDA runs fp32.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

from engine.base import l2_normalise
from engine.errors import EngineUnavailableError
from engine.fbank import NUM_MEL_BINS
from engine.settings import onnx_cache_dir, onnx_int8, onnx_provider

logger = logging.getLogger(__name__)

Runner = Callable[[np.ndarray], np.ndarray]  # [batch, frames, 80] -> [batch, dim]
T = TypeVar("T")

ONNX_OPSET = 17
CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
#: ONNX and torch must agree this closely (max abs difference of L2-normalised
#: embeddings) on a probe input before the ONNX runtime is trusted.
ONNX_TOLERANCE = 1e-4
#: The same on CUDA, looser: cuDNN picks other convolution algorithms (and TF32 on Ampere
#: and later), which moves the last digits; a broken export still differs by ~1.
ONNX_CUDA_TOLERANCE = 1e-2
#: cuDNN's default (exhaustive) search benchmarks every convolution algorithm at the first
#: run of each input shape, and every utterance length is a new shape: a heuristic choice
#: keeps the first request of each length from taking seconds.
CUDA_OPTIONS = {"cudnn_conv_algo_search": "HEURISTIC"}
#: int8 is offered only where its embeddings of every check clip keep this cosine with fp32.
INT8_MIN_COSINE = 0.99
#: At most this many real speech clips, each cut to this length, check the int8 copy.
INT8_CHECK_CLIPS = 4
INT8_CHECK_SECONDS = 10.0


class ProviderUnavailableError(EngineUnavailableError):
    """VOICEPRINT_ONNX_PROVIDER=cuda where onnxruntime cannot run on CUDA."""


@dataclass(frozen=True)
class RuntimeInfo:
    """How an engine runs, for /healthz and the bench."""

    runtime: str = "torch"  # or "onnxruntime"
    provider: str | None = None  # the execution provider ONNX Runtime actually uses
    precision: str = "fp32"  # or "int8"
    #: Lowest cosine between int8 and fp32 embeddings of the check clips, when measured.
    int8_cosine: float | None = None
    #: Why int8 was asked for (VOICEPRINT_ONNX_INT8) but fp32 runs.
    int8_refused: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if value is not None}


# ------------------------------------------------------------------------------ export


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _temporary(target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    return target.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")


#: How a speaker network is exported: fbank in, embedding out, any batch and length.
SPEAKER_GRAPH = {
    "input_names": ["feats"],
    "output_names": ["embedding"],
    "dynamic_axes": {"feats": {0: "batch", 1: "frames"}, "embedding": {0: "batch"}},
}


def export_onnx(
    network: torch.nn.Module,
    target: Path,
    *,
    example: torch.Tensor | None = None,
    graph: dict[str, Any] = SPEAKER_GRAPH,
) -> None:
    """Export atomically (tmp file + rename): a speaker network by default, or another with
    its `example` input and `graph` (names and dynamic axes, as torch.onnx.export takes)."""
    tmp = _temporary(target)
    example = torch.zeros(1, 200, NUM_MEL_BINS) if example is None else example
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # legacy exporter on purpose
            # Shapes traced as constants: intended (exports for one input shape say so).
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            torch.onnx.export(
                network,
                (example,),
                str(tmp),
                **graph,
                opset_version=ONNX_OPSET,
                dynamo=False,  # the TorchScript exporter needs no onnxscript
            )
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


class _QuantiserChatterFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR


@contextmanager
def _quiet_quantiser() -> Iterator[None]:
    """onnxruntime.quantization logs on the root logger: an INFO line per tensor and a
    WARNING about pre-processing (advice for static quantisation) at every call. Only its
    errors are kept, for the few seconds it runs (our own code never logs on the root)."""
    chatter = _QuantiserChatterFilter()
    root = logging.getLogger()
    root.addFilter(chatter)
    try:
        yield
    finally:
        root.removeFilter(chatter)


def quantise_int8(
    source: Path, target: Path, *, op_types: Sequence[str] = (), per_channel: bool = False
) -> None:
    """Dynamic int8 quantisation (weights int8 per tensor, or per channel; activations
    quantised at run time) of `source`, atomically; `op_types` limits it to those operators
    (default: all ORT quantises, Conv and MatMul included). The bench tries the options."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    tmp = _temporary(target)
    try:
        with _quiet_quantiser():
            quantize_dynamic(
                str(source),
                str(tmp),
                weight_type=QuantType.QInt8,
                op_types_to_quantize=list(op_types) or None,
                per_channel=per_channel,
            )
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def cached(path: Path, make: Callable[[Path], None], use: Callable[[Path], T]) -> T:
    """`use(path)`, making the file first if absent, and making it again once if a cached
    file cannot be used (truncated, from a crashed writer...)."""
    made = not path.is_file()
    if made:
        make(path)
    try:
        return use(path)
    except ProviderUnavailableError:  # not the file's fault
        raise
    except Exception:
        if made:
            raise
        logger.warning("cached ONNX file %s is unusable; making it again", path, exc_info=True)
        make(path)
        return use(path)


# ---------------------------------------------------------------------------- sessions


def choose_providers(choice: str) -> list[str | tuple[str, dict[str, str]]]:
    """ONNX Runtime providers for VOICEPRINT_ONNX_PROVIDER `choice`, best first.

    Raises ProviderUnavailableError for `cuda` where onnxruntime offers no CUDA."""
    import onnxruntime as ort

    if choice == "cpu":
        return [CPU]
    available = ort.get_available_providers()
    if CUDA in available:
        return [(CUDA, CUDA_OPTIONS), CPU]  # CPU runs what CUDA has no kernel for
    if choice == "cuda":
        raise ProviderUnavailableError(
            f"VOICEPRINT_ONNX_PROVIDER=cuda, but onnxruntime {ort.__version__} offers no "
            f"{CUDA} (it has {', '.join(available)}): install the onnxruntime-gpu wheel "
            "on a machine with an NVIDIA GPU, or set VOICEPRINT_ONNX_PROVIDER=auto or cpu"
        )
    return [CPU]


def ort_session(
    path: Path, threads: int, providers: Sequence[str | tuple[str, dict[str, str]]] = (CPU,)
) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # No busy-waiting between requests: a web worker must not burn idle CPU.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=list(providers))


def session_runner(session: Any) -> Runner:
    def run(feats: np.ndarray) -> np.ndarray:
        return session.run(None, {"feats": feats})[0]

    return run


def max_difference(a: Runner, b: Runner) -> float:
    """Max abs difference of L2-normalised outputs of two runners on a fixed probe."""
    probe = np.random.default_rng(0).standard_normal((1, 300, NUM_MEL_BINS)).astype(np.float32)
    return float(np.abs(l2_normalise(a(probe)) - l2_normalise(b(probe))).max())


def lowest_cosine(a: Runner, b: Runner, feats: Sequence[np.ndarray]) -> float:
    """The lowest cosine between the two runners' embeddings of each of `feats`."""
    return min(
        float(np.dot(l2_normalise(a(f[None]))[0], l2_normalise(b(f[None]))[0])) for f in feats
    )


# ------------------------------------------------------------------------------ runner


def onnx_runner(
    *,
    name: str,
    network: torch.nn.Module,
    weights: Path,
    threads: int,
    reference: Runner,
    check_features: Callable[[], list[np.ndarray]],
) -> tuple[Runner, RuntimeInfo]:
    """ORT runner on the cached export of `network`, verified against `reference` (torch),
    on the provider VOICEPRINT_ONNX_PROVIDER selects, int8 where VOICEPRINT_ONNX_INT8 asks
    and `check_features` (real speech fbank) allows.

    Raises ProviderUnavailableError where CUDA is required and missing; anything else that
    fails means the export is unusable (the caller falls back to torch or raises)."""
    requested = onnx_provider()
    providers = choose_providers(requested)
    key = f"{name}-{file_sha256(weights)[:16]}-torch{torch.__version__}-op{ONNX_OPSET}"
    fp32_path = onnx_cache_dir() / f"{key}.onnx"

    def checked(path: Path) -> tuple[Runner, str]:
        session = ort_session(path, threads, providers)
        provider = session.get_providers()[0]
        if requested == "cuda" and provider != CUDA:  # the CUDA libraries did not load
            raise ProviderUnavailableError(
                f"VOICEPRINT_ONNX_PROVIDER=cuda, but onnxruntime could not start {CUDA} "
                f"(it runs on {provider}); see onnxruntime's log for the missing library"
            )
        run = session_runner(session)
        tolerance = ONNX_CUDA_TOLERANCE if provider == CUDA else ONNX_TOLERANCE
        diff = max_difference(run, reference)
        if diff > tolerance:
            raise RuntimeError(f"ONNX export of {name} differs from torch by {diff:.2e}")
        return run, provider

    def export(path: Path) -> None:
        logger.info("exporting %s to ONNX at %s", name, path)
        export_onnx(network, path)

    run, provider = cached(fp32_path, export, checked)
    info = RuntimeInfo(runtime="onnxruntime", provider=provider)
    if not onnx_int8():
        return run, info
    if provider != CPU:
        why = f"int8 is a CPU option; {provider} runs fp32"
        return run, RuntimeInfo(runtime="onnxruntime", provider=provider, int8_refused=why)
    return _int8_or_fp32(name, fp32_path, run, threads, check_features)


def _int8_or_fp32(
    name: str,
    fp32_path: Path,
    fp32: Runner,
    threads: int,
    check_features: Callable[[], list[np.ndarray]],
) -> tuple[Runner, RuntimeInfo]:
    """The int8 copy where it agrees with fp32 on real speech, else fp32 with the reason."""

    def refuse(why: str, cosine: float | None = None) -> tuple[Runner, RuntimeInfo]:
        logger.warning("%s: VOICEPRINT_ONNX_INT8 is set but fp32 runs: %s", name, why)
        return fp32, RuntimeInfo(
            runtime="onnxruntime", provider=CPU, int8_cosine=cosine, int8_refused=why
        )

    feats = check_features()
    if not feats:
        return refuse("no real speech to check int8 on (the model directory has no examples/*.wav)")
    int8_path = fp32_path.with_name(fp32_path.stem + ".int8.onnx")

    def quantise(path: Path) -> None:
        logger.info("quantising %s to int8 at %s", name, path)
        quantise_int8(fp32_path, path)

    try:
        int8 = cached(int8_path, quantise, lambda p: session_runner(ort_session(p, threads)))
        cosine = lowest_cosine(int8, fp32, feats)
    except Exception as exc:  # int8 is an option: fp32 is always there
        logger.debug("int8 quantisation of %s failed", name, exc_info=True)
        return refuse(f"int8 quantisation failed: {exc}")
    if cosine < INT8_MIN_COSINE:
        return refuse(
            f"int8 embeddings of {len(feats)} real speech clips reach a cosine of only "
            f"{cosine:.4f} with fp32's (at least {INT8_MIN_COSINE} needed)",
            cosine,
        )
    logger.info("%s runs int8 (lowest cosine with fp32 %.4f on %d clips)", name, cosine, len(feats))
    return int8, RuntimeInfo(
        runtime="onnxruntime", provider=CPU, precision="int8", int8_cosine=cosine
    )

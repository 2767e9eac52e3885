"""3D-Speaker engines (ERes2NetV2, ERes2Net "aug" and CAM++) on ModelScope model directories.

The networks are modelscope's own classes; we only replace the feature front end
(`engine.fbank`, no torchaudio) and the loading (strict state_dict, clear errors).

Model directory resolution, first hit wins:
1. `settings.model_dir` (VOICEPRINT_MODEL_DIR): the model directory itself, or a folder
   holding `<model_id>` (`iic/speech_...`) or just its last component (`speech_...`);
2. the ModelScope cache (MODELSCOPE_CACHE, default ~/.cache/modelscope), every layout
   modelscope has used;
3. `modelscope.snapshot_download` unless VOICEPRINT_MODEL_DOWNLOAD=0, after a quick
   reachability probe so an offline machine fails in seconds rather than hanging.

Runtime: ONNX Runtime by default, 2-5x faster than eager torch here (docs/BENCHMARKS.md;
export, provider and int8 in `engine.onnx_runtime`). VOICEPRINT_ONNX=auto (default) falls
back to torch when the export or its check fails, =1 makes that an error, =0 always uses
torch.
"""

from __future__ import annotations

import ctypes
import gc
import importlib
import importlib.util
import json
import logging
import shutil
import socket
import sys
import threading
import types
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine.audio import decode_audio
from engine.base import SpeakerEngine, l2_normalise
from engine.errors import (
    AudioDecodeError,
    EngineUnavailableError,
    InsufficientSpeechError,
    ModelNotFoundError,
)
from engine.fbank import NUM_MEL_BINS, SAMPLE_RATE, compute_fbank
from engine.onnx_runtime import (
    INT8_CHECK_CLIPS,
    INT8_CHECK_SECONDS,
    ProviderUnavailableError,
    Runner,
    RuntimeInfo,
    onnx_runner,
)
from engine.settings import (
    EngineSettings,
    download_timeout,
    downloads_enabled,
    modelscope_cache,
    modelscope_endpoint,
    onnx_mode,
)

logger = logging.getLogger(__name__)

EMBEDDING_DIM = 192
#: Shortest waveform we embed: ERes2Net pools over frames/8 and needs at least two.
MIN_SAMPLES = SAMPLE_RATE // 10


@dataclass(frozen=True)
class ModelSpec:
    """What we know about one ModelScope model and its network."""

    name: str  # registry name
    model_id: str  # ModelScope id
    revision: str  # the revision we verified against
    model_type: str  # configuration.json model.type
    weights_file: str  # default pretrained_model
    module: str  # modelscope module holding the network class
    cls: str
    #: Constructor arguments besides feat_dim: the classes name the embedding size
    #: differently, and ERes2NetV2's width, scale and expansion select one of its variants.
    network_args: tuple[tuple[str, int], ...] = (("embedding_size", EMBEDDING_DIM),)
    #: Those of network_args that configuration.json's model_config carries (modelscope
    #: builds ERes2NetV2 from them): a directory of another variant is refused by name.
    configured_args: tuple[str, ...] = ()

    @property
    def short_name(self) -> str:
        return self.model_id.rsplit("/", 1)[-1]


ERES2NET = ModelSpec(
    name="eres2net",
    model_id="iic/speech_eres2net_sv_zh-cn_16k-common",
    revision="v1.0.5",
    model_type="eres2net-aug-sv",
    weights_file="pretrained_eres2net_aug.ckpt",
    module="modelscope.models.audio.sv.ERes2Net_aug",
    cls="ERes2Net_aug",
)
CAMPPLUS = ModelSpec(
    name="campplus",
    model_id="iic/speech_campplus_sv_zh-cn_16k-common",
    revision="v1.0.0",
    model_type="cam++-sv",
    weights_file="campplus_cn_common.bin",
    module="modelscope.models.audio.sv.DTDNN",
    cls="CAMPPlus",
)
ERES2NETV2 = ModelSpec(
    name="eres2netv2",
    model_id="iic/speech_eres2netv2_sv_zh-cn_16k-common",
    revision="v1.0.1",
    model_type="eres2netv2-sv",
    weights_file="pretrained_eres2netv2.ckpt",
    module="modelscope.models.audio.sv.ERes2NetV2",
    cls="ERes2NetV2",
    network_args=(("embed_dim", EMBEDDING_DIM), ("baseWidth", 26), ("scale", 2), ("expansion", 2)),
    configured_args=("embed_dim", "baseWidth", "scale", "expansion"),
)
SPECS = {spec.name: spec for spec in (ERES2NETV2, ERES2NET, CAMPPLUS)}


# --------------------------------------------------------------------------- networks

_import_lock = threading.Lock()
_TORCHAUDIO_NAMES = ("torchaudio", "torchaudio.compliance", "torchaudio.compliance.kaldi")


def _placeholder_kaldi_getattr(attr: str) -> Any:
    raise AttributeError(
        f"torchaudio is not installed; torchaudio.compliance.kaldi.{attr} is a placeholder "
        "(engine.speaker3d computes fbank with kaldi-native-fbank instead)"
    )


def _import_network_module(module: str) -> types.ModuleType:
    """Import a modelscope sv module, faking torchaudio only for the import if it is absent.

    Those modules `import torchaudio.compliance.kaldi` at import time although the network
    classes never call it. The placeholders are removed from sys.modules right after, so
    nobody else mistakes them for a real torchaudio.
    """
    with _import_lock:
        if module in sys.modules:
            return sys.modules[module]
        if "torchaudio" in sys.modules or importlib.util.find_spec("torchaudio") is not None:
            return importlib.import_module(module)
        fakes = {name: types.ModuleType(name) for name in _TORCHAUDIO_NAMES}
        fakes["torchaudio"].compliance = fakes["torchaudio.compliance"]
        fakes["torchaudio.compliance"].kaldi = fakes["torchaudio.compliance.kaldi"]
        fakes["torchaudio.compliance.kaldi"].__getattr__ = _placeholder_kaldi_getattr
        sys.modules.update(fakes)
        try:
            return importlib.import_module(module)
        finally:
            for name, fake in fakes.items():
                if sys.modules.get(name) is fake:
                    del sys.modules[name]


def build_network(spec: ModelSpec) -> torch.nn.Module:
    """A fresh (untrained) network of the spec's architecture, in eval mode."""
    network_cls = getattr(_import_network_module(spec.module), spec.cls)
    return network_cls(feat_dim=NUM_MEL_BINS, **dict(spec.network_args)).eval()


# ------------------------------------------------------------------ model directory


def _download_hint(spec: ModelSpec, problem: str) -> str:
    """The ModelNotFoundError message: what went wrong, what to download, where to put it."""
    return (
        f"{problem}\n"
        f"The '{spec.name}' engine needs the ModelScope model {spec.model_id} "
        f"(revision {spec.revision}): a directory with configuration.json and "
        f"{spec.weights_file}. Download it with\n"
        f"  modelscope download {spec.model_id} --revision {spec.revision} "
        f'--local-dir "$VOICEPRINT_MODEL_DIR/{spec.model_id}"\n'
        f"or in Python: modelscope.snapshot_download('{spec.model_id}', "
        f"revision='{spec.revision}', local_dir=...).\n"
        f"Then set VOICEPRINT_MODEL_DIR to the folder holding {spec.model_id.split('/')[0]}/ "
        f"(or to the model directory itself); the ModelScope cache (MODELSCOPE_CACHE) is "
        f"also searched."
    )


def _is_model_dir(path: Path) -> bool:
    return (path / "configuration.json").is_file()


def _configured_type(path: Path) -> str | None:
    """configuration.json's model.type, or None when it cannot be read."""
    try:
        return json.loads((path / "configuration.json").read_text(encoding="utf-8"))["model"][
            "type"
        ]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _from_settings(spec: ModelSpec, root: Path) -> Path | None:
    """The model directory VOICEPRINT_MODEL_DIR designates for this spec, or None."""
    for child in (root / spec.model_id, root / spec.short_name):
        if child.is_dir():
            return child
    if root.name == spec.short_name:
        return root  # validation reports what is wrong inside
    if _is_model_dir(root):
        # Itself a model directory: ours unless it plainly holds another model (then the
        # other engine uses it and this one looks further).
        configured = _configured_type(root)
        return None if configured is not None and configured != spec.model_type else root
    return None


def _cache_candidates(spec: ModelSpec) -> list[Path]:
    """Every place modelscope's SDK versions have cached this model, newest layout first."""
    roots = [modelscope_cache()]
    owner, name = spec.model_id.split("/", 1)
    safe = name.replace(".", "___")
    candidates: list[Path] = []
    for root in roots:
        for base in (root, root / "hub"):
            snapshots = base / "models" / f"{owner}--{name}" / "snapshots"
            candidates.append(snapshots / spec.revision)
            if snapshots.is_dir():
                candidates.extend(sorted(p for p in snapshots.iterdir() if p.is_dir()))
            candidates += [base / "models" / owner / safe, base / owner / name]
    return candidates


def _reachable(host: str, port: int = 443, timeout: float = 3.0) -> bool:
    """TCP connect in a daemon thread, so a hanging DNS lookup cannot stall us either."""
    result: list[bool] = []

    def probe() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout + 1.0)
    return bool(result and result[0])


def _download(spec: ModelSpec) -> Path:
    """snapshot_download where the network allows; raises ModelNotFoundError quickly if not."""
    from urllib.parse import urlparse

    endpoint = urlparse(modelscope_endpoint())
    host = endpoint.hostname or "modelscope.cn"
    port = endpoint.port or (80 if endpoint.scheme == "http" else 443)
    if not _reachable(host, port):
        raise ModelNotFoundError(
            _download_hint(spec, f"model not found locally and {host} is unreachable.")
        )
    limit = download_timeout()
    result: dict[str, Any] = {}

    def fetch() -> None:
        try:
            from modelscope import snapshot_download

            result["path"] = snapshot_download(spec.model_id, revision=spec.revision)
        except Exception as exc:  # any failure becomes one clear error below
            result["error"] = exc

    logger.info("downloading %s (revision %s) from %s", spec.model_id, spec.revision, host)
    thread = threading.Thread(target=fetch, daemon=True)
    thread.start()
    thread.join(limit)
    if "path" not in result:
        why = result.get("error") or f"no answer within {limit:.0f} s"
        raise ModelNotFoundError(_download_hint(spec, f"download of {spec.model_id} failed: {why}"))
    return Path(result["path"])


def resolve_model_dir(spec: ModelSpec, settings: EngineSettings) -> Path:
    """Find (or download) the spec's model directory; ModelNotFoundError when impossible."""
    tried: list[str] = []
    if settings.model_dir:
        root = Path(settings.model_dir).expanduser()
        found = _from_settings(spec, root) if root.is_dir() else None
        if found is not None:
            return found
        tried.append(f"VOICEPRINT_MODEL_DIR={root}" + ("" if root.is_dir() else " (absent)"))
    for candidate in _cache_candidates(spec):
        if _is_model_dir(candidate):
            return candidate
    tried.append("the ModelScope cache")
    if downloads_enabled():
        return _download(spec)
    problem = f"model {spec.model_id} not found in {' or '.join(tried)} (downloads disabled)."
    raise ModelNotFoundError(_download_hint(spec, problem))


def _read_configuration(spec: ModelSpec, model_dir: Path) -> str:
    """Validate configuration.json; returns the weights file name it names."""
    path = model_dir / "configuration.json"

    def bad(why: str) -> ModelNotFoundError:
        return ModelNotFoundError(_download_hint(spec, f"{path}: {why}"))

    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise bad("missing") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise bad(f"unreadable ({exc})") from None
    model = config.get("model") if isinstance(config, dict) else None
    if not isinstance(model, dict):
        raise bad('no "model" object')
    if model.get("type") != spec.model_type:
        raise bad(f"model type {model.get('type')!r}, expected {spec.model_type!r}")
    model_config = model.get("model_config") or {}
    if not isinstance(model_config, dict):
        raise bad('"model_config" is not an object')
    expected = {"fbank_dim": NUM_MEL_BINS, "emb_size": EMBEDDING_DIM, "sample_rate": SAMPLE_RATE}
    expected |= {key: dict(spec.network_args)[key] for key in spec.configured_args}
    for key, value in expected.items():
        if key in model_config and model_config[key] != value:
            raise bad(f"model_config.{key}={model_config[key]!r}, expected {value}")
    weights = model.get("pretrained_model", spec.weights_file)
    if not isinstance(weights, str) or not weights or Path(weights).name != weights:
        raise bad(f"pretrained_model {weights!r} is not a file name")
    return weights


def _load_weights(spec: ModelSpec, network: torch.nn.Module, weights: Path) -> None:
    if not weights.is_file():
        raise ModelNotFoundError(_download_hint(spec, f"weights file {weights} is missing."))
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
        network.load_state_dict(state, strict=True)
    except Exception as exc:  # pickle, zip, EOF, shape and key errors alike mean "corrupt"
        problem = f"weights file {weights} is corrupt or of another model: {exc}"
        raise ModelNotFoundError(_download_hint(spec, problem)) from exc


# ----------------------------------------------------------------------------- runtimes


def _torch_runner(network: torch.nn.Module) -> Runner:
    # channels_last: same numbers, ~20% faster convolutions with oneDNN (docs/BENCHMARKS.md).
    network = network.to(memory_format=torch.channels_last)

    def run(feats: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return network(torch.from_numpy(feats)).numpy()

    return run


def _check_features(model_dir: Path) -> list[np.ndarray]:
    """fbank of the real speech ModelScope ships in the model directory (examples/*.wav),
    which the int8 copy must embed like fp32 does; empty when there is none."""
    feats = []
    for path in sorted((model_dir / "examples").glob("*.wav"))[:INT8_CHECK_CLIPS]:
        try:
            samples = decode_audio(path.read_bytes())
        except (OSError, AudioDecodeError):
            logger.warning("%s is unreadable; not used to check int8", path)
            continue
        samples = samples[: int(INT8_CHECK_SECONDS * SAMPLE_RATE)]
        if samples.size >= MIN_SAMPLES:
            feats.append(compute_fbank(samples))
    return feats


# ------------------------------------------------------------------------------ engine


class Speaker3DEngine(SpeakerEngine):
    """A 3D-Speaker network behind the SpeakerEngine contract (192-dim, 16 kHz)."""

    dim = EMBEDDING_DIM

    def __init__(self, spec: ModelSpec, model_dir: Path, runner: Runner, info: RuntimeInfo):
        self.name = spec.name
        self.spec = spec
        self.source = str(model_dir)
        self.runtime_info = info
        self.runtime = info.runtime  # "torch" or "onnxruntime"
        self._run = runner

    def runtime_status(self) -> dict[str, Any]:
        return self.runtime_info.as_dict()

    def features(self, waveform: np.ndarray) -> np.ndarray:
        """Network input for one waveform: mean-normalised fbank [frames, 80]."""
        samples = np.asarray(waveform, dtype=np.float32).reshape(-1)
        if samples.size < MIN_SAMPLES:
            raise InsufficientSpeechError(samples.size / SAMPLE_RATE, MIN_SAMPLES / SAMPLE_RATE)
        return compute_fbank(samples)

    def embed(self, waveform: np.ndarray) -> np.ndarray:
        return l2_normalise(self._run(self.features(waveform)[None]))[0]

    def embed_batch(self, waveforms: Sequence[np.ndarray]) -> np.ndarray:
        """Stacks only equal-length inputs: padding would change the pooled statistics."""
        out = np.zeros((len(waveforms), self.dim), dtype=np.float32)
        groups: dict[int, list[tuple[int, np.ndarray]]] = {}
        for index, waveform in enumerate(waveforms):
            feats = self.features(waveform)
            groups.setdefault(feats.shape[0], []).append((index, feats))
        for members in groups.values():
            indices = [index for index, _ in members]
            out[indices] = l2_normalise(self._run(np.stack([f for _, f in members])))
        return out


def _choose_runtime(
    spec: ModelSpec,
    network: torch.nn.Module,
    weights: Path,
    model_dir: Path,
    settings: EngineSettings,
) -> tuple[Runner, RuntimeInfo]:
    runner = _torch_runner(network)
    mode = onnx_mode()
    if mode == "off":
        return runner, RuntimeInfo()
    # Same thread count as torch (ORT's own default counts physical cores only).
    threads = settings.torch_threads or torch.get_num_threads()
    try:
        return onnx_runner(
            name=spec.name,
            network=network,
            weights=weights,
            threads=threads,
            reference=runner,
            check_features=lambda: _check_features(model_dir),
        )
    except ProviderUnavailableError as exc:  # asked for explicitly: not silently the CPU
        raise EngineUnavailableError(f"{spec.name}: {exc}") from exc
    except Exception as exc:
        if mode == "on":
            raise EngineUnavailableError(f"{spec.name}: ONNX runtime failed: {exc}") from exc
        # ONNX is an optimisation: torch gives the same embeddings, only slower.
        logger.warning("%s: ONNX runtime unavailable, using torch", spec.name, exc_info=True)
        return runner, RuntimeInfo()


def _release_freed_memory() -> None:
    """Hand the loading garbage (state_dict, export, torch copy) back to the OS.

    glibc keeps freed arenas mapped; trimming them takes ERes2Net's resident size after
    load from about 1.0 GB to 0.7 GB. Best effort: other C libraries have no malloc_trim."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def load_engine(spec: ModelSpec, settings: EngineSettings) -> Speaker3DEngine:
    """Resolve, validate and load a 3D-Speaker model; ModelNotFoundError if it cannot."""
    if settings.torch_threads > 0:
        torch.set_num_threads(settings.torch_threads)  # process-wide, as the setting says
    model_dir = resolve_model_dir(spec, settings)
    weights = model_dir / _read_configuration(spec, model_dir)
    network = build_network(spec)
    _load_weights(spec, network, weights)
    runner, info = _choose_runtime(spec, network, weights, model_dir, settings)
    del network  # with ONNX, only the session is kept
    _release_freed_memory()
    logger.info("%s loaded from %s (%s)", spec.name, model_dir, info.as_dict())
    return Speaker3DEngine(spec, model_dir, runner, info)


def modelscope_configuration(spec: ModelSpec) -> dict[str, Any]:
    """configuration.json as ModelScope ships it for these models."""
    return {
        "framework": "pytorch",
        "task": "speaker-verification",
        "model": {
            "type": spec.model_type,
            "model_config": {
                "sample_rate": SAMPLE_RATE,
                "fbank_dim": NUM_MEL_BINS,
                "emb_size": EMBEDDING_DIM,
                **{key: dict(spec.network_args)[key] for key in spec.configured_args},
            },
            "pretrained_model": spec.weights_file,
        },
        "pipeline": {"type": "speaker-verification"},
    }


def write_random_model_dir(
    spec: ModelSpec, path: Path, seed: int = 0, *, examples: Sequence[Path] = ()
) -> Path:
    """A model directory in ModelScope's layout holding seeded random weights of the real
    architecture: for tests and the speed benchmark, which have no real weights.
    `examples` (real speech WAV files) are copied into examples/, as ModelScope ships some."""
    torch.manual_seed(seed)
    network = build_network(spec)
    generator = torch.Generator().manual_seed(seed)
    for module in network.modules():  # non-trivial BatchNorm statistics, as after training
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm) and module.track_running_stats:
            module.running_mean.uniform_(-0.1, 0.1, generator=generator)
            module.running_var.uniform_(0.5, 1.5, generator=generator)
    path.mkdir(parents=True, exist_ok=True)
    torch.save(network.state_dict(), path / spec.weights_file)
    config = json.dumps(modelscope_configuration(spec), indent=2)
    (path / "configuration.json").write_text(config, encoding="utf-8")
    if examples:
        (path / "examples").mkdir(exist_ok=True)
        for example in examples:
            shutil.copyfile(example, path / "examples" / example.name)
    return path


def load_eres2netv2(settings: EngineSettings) -> SpeakerEngine:
    """ERes2NetV2, iic/speech_eres2netv2_sv_zh-cn_16k-common (the default: accurate and
    real time; README, "Speaker engines")."""
    return load_engine(ERES2NETV2, settings)


def load_eres2net(settings: EngineSettings) -> SpeakerEngine:
    """ERes2Net_aug, iic/speech_eres2net_sv_zh-cn_16k-common (the accurate one)."""
    return load_engine(ERES2NET, settings)


def load_campplus(settings: EngineSettings) -> SpeakerEngine:
    """CAM++, iic/speech_campplus_sv_zh-cn_16k-common (the fast one)."""
    return load_engine(CAMPPLUS, settings)

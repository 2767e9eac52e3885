"""3D-Speaker engines on random-weight checkpoints of the real architectures.

No pretrained weights exist here, so every model directory is built in tmp in ModelScope's
layout; the engine must reproduce a direct forward of the network on the same features.
The int8 check embeds real speech (ModelScope's own example trial, from ../shared), as the
shipped model directories' examples/*.wav.
"""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from engine import onnx_runtime
from engine.errors import EngineUnavailableError, InsufficientSpeechError, ModelNotFoundError
from engine.fbank import compute_fbank
from engine.onnx_runtime import CPU, CUDA
from engine.settings import EngineSettings
from engine.speaker3d import (
    CAMPPLUS,
    ERES2NET,
    ERES2NETV2,
    ModelSpec,
    Speaker3DEngine,
    build_network,
    load_campplus,
    load_eres2net,
    load_eres2netv2,
    write_random_model_dir,
)
from tests.engine.conftest import TRIAL_DIR, ZH_DIR, require_shared_audio, shared_files
from tests.local_servers import closed_port


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory):
    """No download, an empty ModelScope cache, torch runtime unless a test asks for ONNX."""
    monkeypatch.setenv("VOICEPRINT_MODEL_DOWNLOAD", "0")
    monkeypatch.setenv("MODELSCOPE_CACHE", str(tmp_path_factory.mktemp("empty-cache")))
    monkeypatch.setenv("VOICEPRINT_ONNX", "0")
    monkeypatch.setenv("VOICEPRINT_ONNX_CACHE_DIR", str(tmp_path_factory.mktemp("onnx")))
    monkeypatch.delenv("VOICEPRINT_ONNX_INT8", raising=False)
    monkeypatch.delenv("VOICEPRINT_ONNX_PROVIDER", raising=False)


@pytest.fixture(scope="module")
def models_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A VOICEPRINT_MODEL_DIR holding the three models as iic/<model>."""
    root = tmp_path_factory.mktemp("models")
    write_random_model_dir(CAMPPLUS, root / CAMPPLUS.model_id, seed=1)
    write_random_model_dir(ERES2NET, root / ERES2NET.model_id, seed=2)
    write_random_model_dir(ERES2NETV2, root / ERES2NETV2.model_id, seed=3)
    return root


@pytest.fixture(scope="module")
def with_examples(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A VOICEPRINT_MODEL_DIR whose CAM++ and ERes2NetV2 directories hold examples/*.wav:
    ModelScope's example trial (real Mandarin speech), as the shipped directories do."""
    examples = shared_files(TRIAL_DIR, "*_cn_16k.wav")
    root = tmp_path_factory.mktemp("models-with-examples")
    for spec, seed in ((CAMPPLUS, 1), (ERES2NETV2, 3)):
        write_random_model_dir(spec, root / spec.model_id, seed=seed, examples=examples)
    return root


def speechlike(seconds: float, seed: int = 0) -> np.ndarray:
    """Harmonics with a wandering pitch plus noise: enough spectral structure for fbank."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(16_000 * seconds)) / 16_000
    pitch = 120 + 30 * np.sin(2 * np.pi * 0.7 * t + seed)
    phase = 2 * np.pi * np.cumsum(pitch) / 16_000
    wave = sum(np.sin(k * phase) / k for k in range(1, 8)) * 0.2
    return (wave + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


def direct_forward(spec: ModelSpec, model_dir: Path, wave: np.ndarray) -> np.ndarray:
    network = build_network(spec)
    state = torch.load(model_dir / spec.weights_file, map_location="cpu", weights_only=True)
    network.load_state_dict(state, strict=True)
    with torch.inference_mode():
        out = network(torch.from_numpy(compute_fbank(wave))[None]).numpy()[0]
    return out / np.linalg.norm(out)


def assert_embedding(vector: np.ndarray) -> None:
    assert vector.shape == (192,)
    assert vector.dtype == np.float32
    assert np.isfinite(vector).all()
    assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)


# --------------------------------------------------------------------------- loading


def test_campplus_equals_direct_forward(models_root: Path) -> None:
    engine = load_campplus(EngineSettings(model_dir=str(models_root)))
    model_dir = models_root / CAMPPLUS.model_id
    assert (engine.name, engine.dim, engine.source) == ("campplus", 192, str(model_dir))
    wave = speechlike(2.0)
    vector = engine.embed(wave)
    assert_embedding(vector)
    np.testing.assert_allclose(vector, direct_forward(CAMPPLUS, model_dir, wave), atol=1e-5)
    np.testing.assert_array_equal(vector, engine.embed(wave))  # deterministic


LOADERS = {"eres2net": load_eres2net, "eres2netv2": load_eres2netv2, "campplus": load_campplus}


@pytest.mark.parametrize(
    "spec",
    [pytest.param(ERES2NET, marks=pytest.mark.slow), ERES2NETV2],  # ERes2Net_aug: 55 M parameters
    ids=lambda spec: spec.name,
)
def test_eres2net_family_equals_direct_forward(models_root: Path, spec: ModelSpec) -> None:
    engine = LOADERS[spec.name](EngineSettings(model_dir=str(models_root)))
    model_dir = models_root / spec.model_id
    assert (engine.name, engine.dim, engine.source) == (spec.name, 192, str(model_dir))
    assert isinstance(engine, Speaker3DEngine) and engine.runtime == "torch"
    wave = speechlike(1.5, seed=3)
    vector = engine.embed(wave)
    assert_embedding(vector)
    np.testing.assert_allclose(vector, direct_forward(spec, model_dir, wave), atol=1e-5)
    other, longer = speechlike(1.5, seed=6), speechlike(2.0, seed=9)
    batch = engine.embed_batch([wave, other, longer])  # the first two: one forward
    singles = np.stack([vector, engine.embed(other), engine.embed(longer)])
    np.testing.assert_allclose(batch, singles, atol=1e-5)


@pytest.mark.slow  # exports 221 MB of weights to ONNX
def test_eres2net_onnx_equals_torch(models_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = EngineSettings(model_dir=str(models_root))
    wave = speechlike(1.2, seed=4)
    expected = load_eres2net(settings).embed(wave)
    monkeypatch.setenv("VOICEPRINT_ONNX", "auto")  # the default
    engine = load_eres2net(settings)
    assert isinstance(engine, Speaker3DEngine) and engine.runtime == "onnxruntime"
    vector = engine.embed(wave)
    assert_embedding(vector)
    np.testing.assert_allclose(vector, expected, atol=1e-4)


def test_eres2netv2_onnx_equals_torch(models_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = EngineSettings(model_dir=str(models_root))
    wave = speechlike(3.0, seed=10)
    expected = load_eres2netv2(settings).embed(wave)
    monkeypatch.setenv("VOICEPRINT_ONNX", "1")
    engine = load_eres2netv2(settings)
    assert isinstance(engine, Speaker3DEngine)
    assert engine.runtime_status() == {
        "runtime": "onnxruntime", "provider": CPU, "precision": "fp32"
    }  # fmt: skip
    vector = engine.embed(wave)
    assert_embedding(vector)
    np.testing.assert_allclose(vector, expected, atol=1e-4)


def _eres2netv2_copy(models_root: Path, target: Path, weights: Path | None) -> Path:
    """A copy of the generated ERes2NetV2 directory: its configuration, and `weights` (None:
    none) linked as the weights file."""
    target.mkdir()
    source = models_root / ERES2NETV2.model_id
    (target / "configuration.json").write_bytes((source / "configuration.json").read_bytes())
    if weights is not None:
        (target / ERES2NETV2.weights_file).symlink_to(weights)
    return target


def test_eres2netv2_configuration_of_another_variant_is_refused(
    models_root: Path, tmp_path: Path
) -> None:
    """ModelScope's ERes2NetV2 w24s4ep4 has the same model type and other widths."""
    weights = models_root / ERES2NETV2.model_id / ERES2NETV2.weights_file
    model_dir = _eres2netv2_copy(models_root, tmp_path / ERES2NETV2.short_name, weights)
    config = json.loads((model_dir / "configuration.json").read_text())
    assert config["model"]["type"] == "eres2netv2-sv"
    assert config["model"]["model_config"]["baseWidth"] == 26
    config["model"]["model_config"].update(baseWidth=24, scale=4, expansion=4)
    (model_dir / "configuration.json").write_text(json.dumps(config))
    with pytest.raises(ModelNotFoundError) as caught:
        load_eres2netv2(EngineSettings(model_dir=str(model_dir)))
    assert "model_config.baseWidth=24, expected 26" in str(caught.value)
    assert_download_hint(str(caught.value), ERES2NETV2)


@pytest.mark.parametrize("damage", ["missing", "campplus"])
def test_eres2netv2_bad_weights_raise_model_not_found(
    models_root: Path, tmp_path: Path, damage: str
) -> None:
    # "campplus": a real checkpoint, of another network.
    weights = models_root / CAMPPLUS.model_id / CAMPPLUS.weights_file
    target = tmp_path / ERES2NETV2.short_name
    model_dir = _eres2netv2_copy(models_root, target, weights if damage == "campplus" else None)
    with pytest.raises(ModelNotFoundError) as caught:
        load_eres2netv2(EngineSettings(model_dir=str(model_dir)))
    assert_download_hint(str(caught.value), ERES2NETV2)
    expected = "is missing" if damage == "missing" else "corrupt or of another model"
    assert expected in str(caught.value)


# ------------------------------------------------------------------------ int8, providers


@pytest.mark.parametrize("spec", [CAMPPLUS, ERES2NETV2], ids=lambda spec: spec.name)
def test_int8_is_used_where_it_agrees_with_fp32_on_real_speech(
    with_examples: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, spec: ModelSpec
) -> None:
    # How closely int8 follows fp32 is a property of the weights (generated ones here) and of
    # ONNX Runtime's kernels: one version put ERes2NetV2 at 0.98998 against the 0.99 gate. So
    # the rule is checked on both sides of the cosine this build measures, not at 0.99.
    settings = EngineSettings(model_dir=str(with_examples))
    monkeypatch.setenv("VOICEPRINT_ONNX_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("VOICEPRINT_ONNX", "1")
    fp32 = load_engine_of(spec, settings)
    monkeypatch.setenv("VOICEPRINT_ONNX_INT8", "1")
    monkeypatch.setattr(onnx_runtime, "INT8_MIN_COSINE", LENIENT_INT8_GATE)
    int8 = load_engine_of(spec, settings)
    status = int8.runtime_status()
    assert status["precision"] == "int8" and status["provider"] == CPU
    cosine = status["int8_cosine"]
    assert LENIENT_INT8_GATE <= cosine <= 1.0 + 1e-6
    (fp32_file,) = tmp_path.glob(f"{spec.name}-*-op17.onnx")
    (int8_file,) = tmp_path.glob(f"{spec.name}-*.int8.onnx")  # cached beside the fp32 export
    assert int8_file.stat().st_size < fp32_file.stat().st_size / 2
    # Real speech the check did not see: int8 embeds it as fp32 does, not identically.
    wave, _ = soundfile.read(require_shared_audio(ZH_DIR / "enroll" / "fangjun-sr-1.wav"),
                             dtype="float32")  # fmt: skip
    a, b = fp32.embed(wave), int8.embed(wave)
    assert_embedding(b)
    assert LENIENT_INT8_GATE < float(a @ b) < 1.0
    stamp = int8_file.stat().st_mtime_ns
    assert load_engine_of(spec, settings).runtime_status()["precision"] == "int8"
    assert int8_file.stat().st_mtime_ns == stamp  # the quantised copy is reused
    # A gate just above what int8 reaches: the same cached copy is refused, fp32 runs.
    monkeypatch.setattr(onnx_runtime, "INT8_MIN_COSINE", min(cosine + 1e-3, 1.0 + 1e-3))
    refused = load_engine_of(spec, settings).runtime_status()
    assert refused["precision"] == "fp32"
    assert "reach a cosine of only" in refused["int8_refused"]


#: Far below what int8 reaches on any network here, far above what a broken quantisation gives.
LENIENT_INT8_GATE = 0.95


def load_engine_of(spec: ModelSpec, settings: EngineSettings) -> Speaker3DEngine:
    engine = LOADERS[spec.name](settings)
    assert isinstance(engine, Speaker3DEngine)
    return engine


def test_int8_without_real_speech_to_check_on_runs_fp32_and_says_why(
    models_root: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """models_root's directories have no examples/*.wav: nothing to measure int8 on."""
    monkeypatch.setenv("VOICEPRINT_ONNX", "1")
    monkeypatch.setenv("VOICEPRINT_ONNX_INT8", "1")
    with caplog.at_level("WARNING", logger="engine.onnx_runtime"):
        engine = load_engine_of(CAMPPLUS, EngineSettings(model_dir=str(models_root)))
    status = engine.runtime_status()
    assert status["precision"] == "fp32" and "int8_cosine" not in status
    assert "no real speech to check int8 on" in status["int8_refused"]
    (warning,) = [r for r in caplog.records if r.levelname == "WARNING"]
    assert "VOICEPRINT_ONNX_INT8" in warning.getMessage()


def test_int8_is_off_by_default(with_examples: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOICEPRINT_ONNX", "1")
    engine = load_engine_of(CAMPPLUS, EngineSettings(model_dir=str(with_examples)))
    assert engine.runtime_status() == {
        "runtime": "onnxruntime",
        "provider": CPU,
        "precision": "fp32",
    }


def _has_cuda() -> bool:
    import onnxruntime

    return CUDA in onnxruntime.get_available_providers()


@pytest.mark.skipif(_has_cuda(), reason="onnxruntime here offers CUDA: auto picks it")
@pytest.mark.parametrize("choice", ["auto", "cpu"])
def test_auto_and_cpu_providers_run_on_the_cpu_here(
    models_root: Path, monkeypatch: pytest.MonkeyPatch, choice: str
) -> None:
    monkeypatch.setenv("VOICEPRINT_ONNX", "1")
    monkeypatch.setenv("VOICEPRINT_ONNX_PROVIDER", choice)
    engine = load_engine_of(CAMPPLUS, EngineSettings(model_dir=str(models_root)))
    assert engine.runtime_status()["provider"] == CPU


@pytest.mark.skipif(_has_cuda(), reason="onnxruntime here offers CUDA")
@pytest.mark.parametrize("onnx", ["auto", "1"])
def test_cuda_provider_without_cuda_is_an_error_not_a_silent_cpu(
    models_root: Path, monkeypatch: pytest.MonkeyPatch, onnx: str
) -> None:
    """Even with VOICEPRINT_ONNX=auto (which falls back to torch when an export fails): a
    worker deployed for a GPU must not quietly run 20x slower on its CPU."""
    monkeypatch.setenv("VOICEPRINT_ONNX", onnx)
    monkeypatch.setenv("VOICEPRINT_ONNX_PROVIDER", "cuda")
    with pytest.raises(EngineUnavailableError) as caught:
        load_campplus(EngineSettings(model_dir=str(models_root)))
    message = str(caught.value)
    assert "VOICEPRINT_ONNX_PROVIDER=cuda" in message and "onnxruntime-gpu" in message


@pytest.mark.skipif(
    not _has_cuda(),
    reason="needs onnxruntime-gpu and an NVIDIA GPU: this onnxruntime has no CUDAExecutionProvider",
)
@pytest.mark.parametrize("choice", ["auto", "cuda"])
def test_cuda_provider_where_available(
    with_examples: Path, monkeypatch: pytest.MonkeyPatch, choice: str
) -> None:
    settings = EngineSettings(model_dir=str(with_examples))
    wave = speechlike(3.0, seed=11)
    expected = load_eres2netv2(settings).embed(wave)  # torch on the CPU
    monkeypatch.setenv("VOICEPRINT_ONNX", "1")
    monkeypatch.setenv("VOICEPRINT_ONNX_PROVIDER", choice)
    monkeypatch.setenv("VOICEPRINT_ONNX_INT8", "1")  # a CPU option: CUDA runs fp32
    engine = load_engine_of(ERES2NETV2, settings)
    status = engine.runtime_status()
    assert status["provider"] == CUDA and status["precision"] == "fp32"
    assert "CPU option" in status["int8_refused"]
    vector = engine.embed(wave)
    assert_embedding(vector)
    assert float(vector @ expected) > 0.999
    batch = engine.embed_batch([wave, speechlike(3.0, seed=12)])
    np.testing.assert_allclose(batch[0], vector, atol=1e-3)


def test_model_dir_may_be_the_model_directory_itself(models_root: Path) -> None:
    model_dir = models_root / CAMPPLUS.model_id
    engine = load_campplus(EngineSettings(model_dir=str(model_dir)))
    assert engine.source == str(model_dir)


def test_model_dir_may_hold_the_short_name(models_root: Path, tmp_path: Path) -> None:
    (tmp_path / CAMPPLUS.short_name).symlink_to(models_root / CAMPPLUS.model_id)
    engine = load_campplus(EngineSettings(model_dir=str(tmp_path)))
    assert engine.source == str(tmp_path / CAMPPLUS.short_name)


def test_another_models_directory_is_not_ours(models_root: Path) -> None:
    """VOICEPRINT_MODEL_DIR set to the ERes2Net directory: CAM++ must look elsewhere."""
    with pytest.raises(ModelNotFoundError) as caught:
        load_campplus(EngineSettings(model_dir=str(models_root / ERES2NET.model_id)))
    assert "not found in VOICEPRINT_MODEL_DIR=" in str(caught.value)


def test_modelscope_cache_is_searched(
    models_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cached = tmp_path / "models" / "iic" / CAMPPLUS.short_name
    cached.parent.mkdir(parents=True)
    cached.symlink_to(models_root / CAMPPLUS.model_id)
    monkeypatch.setenv("MODELSCOPE_CACHE", str(tmp_path))
    assert load_campplus(EngineSettings()).source == str(cached)


def test_torchaudio_placeholder_does_not_leak(models_root: Path) -> None:
    load_campplus(EngineSettings(model_dir=str(models_root)))
    assert "torchaudio" not in sys.modules or sys.modules["torchaudio"].__spec__ is not None


# ---------------------------------------------------------------------------- batches


def test_batch_equals_single(models_root: Path) -> None:
    engine = load_campplus(EngineSettings(model_dir=str(models_root)))
    waves = [speechlike(1.0, 1), speechlike(2.0, 2), speechlike(1.0, 3), speechlike(1.5, 4)]
    batch = engine.embed_batch(waves)
    assert batch.shape == (4, 192) and batch.dtype == np.float32
    singles = np.stack([engine.embed(w) for w in waves])
    np.testing.assert_allclose(batch, singles, atol=1e-5)
    assert engine.embed_batch([]).shape == (0, 192)


def test_concurrent_calls_agree(models_root: Path) -> None:
    engine = load_campplus(EngineSettings(model_dir=str(models_root)))
    waves = [speechlike(1.0, seed) for seed in range(4)]
    expected = [engine.embed(w) for w in waves]
    results: dict[int, np.ndarray] = {}
    threads = [
        threading.Thread(target=lambda i=i: results.__setitem__(i, engine.embed(waves[i])))
        for i in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for i in range(4):
        np.testing.assert_allclose(results[i], expected[i], atol=1e-6)


def test_too_short_waveform_is_insufficient_speech(models_root: Path) -> None:
    engine = load_campplus(EngineSettings(model_dir=str(models_root)))
    with pytest.raises(InsufficientSpeechError):
        engine.embed(np.zeros(800, dtype=np.float32))


def test_real_speech(models_root: Path) -> None:
    clip = require_shared_audio(ZH_DIR / "enroll" / "fangjun-sr-1.wav")
    wave, rate = soundfile.read(clip, dtype="float32", frames=3 * 16_000)
    assert rate == 16_000
    engine = load_campplus(EngineSettings(model_dir=str(models_root)))
    model_dir = models_root / CAMPPLUS.model_id
    np.testing.assert_allclose(
        engine.embed(wave), direct_forward(CAMPPLUS, model_dir, wave), atol=1e-5
    )


# ----------------------------------------------------------------------------- errors


def _copy_campplus(models_root: Path, target: Path) -> Path:
    target.mkdir(parents=True)
    for name in ("configuration.json", CAMPPLUS.weights_file):
        (target / name).write_bytes((models_root / CAMPPLUS.model_id / name).read_bytes())
    return target


def _break_weights_missing(model_dir: Path) -> None:
    (model_dir / CAMPPLUS.weights_file).unlink()


def _break_weights_corrupt(model_dir: Path) -> None:
    (model_dir / CAMPPLUS.weights_file).write_bytes(b"not a checkpoint" * 100)


def _break_weights_truncated(model_dir: Path) -> None:
    path = model_dir / CAMPPLUS.weights_file
    path.write_bytes(path.read_bytes()[: 1 << 20])


def _break_weights_other_architecture(model_dir: Path) -> None:
    torch.save({"conv.weight": torch.zeros(3)}, model_dir / CAMPPLUS.weights_file)


def _break_config(**changes: object):
    def apply(model_dir: Path) -> None:
        path = model_dir / "configuration.json"
        config = json.loads(path.read_text())
        config["model"].update(changes)
        path.write_text(json.dumps(config))

    return apply


def _break_config_json(model_dir: Path) -> None:
    (model_dir / "configuration.json").write_text("{not json")


def _break_config_missing(model_dir: Path) -> None:
    (model_dir / "configuration.json").unlink()


@pytest.mark.parametrize(
    "damage",
    [
        _break_weights_missing,
        _break_weights_corrupt,
        _break_weights_truncated,
        _break_weights_other_architecture,
        _break_config(type="eres2net-aug-sv"),
        _break_config(model_config={"fbank_dim": 40, "emb_size": 192}),
        _break_config(pretrained_model="../elsewhere.bin"),
        _break_config_json,
        _break_config_missing,
    ],
    ids=lambda f: f.__name__.removeprefix("_break_"),
)
def test_broken_model_dir_raises_model_not_found(models_root: Path, tmp_path: Path, damage) -> None:
    model_dir = _copy_campplus(models_root, tmp_path / CAMPPLUS.short_name)
    damage(model_dir)
    with pytest.raises(ModelNotFoundError) as caught:
        load_campplus(EngineSettings(model_dir=str(model_dir)))
    assert_download_hint(str(caught.value), CAMPPLUS)


@pytest.mark.parametrize("where", ["missing", "empty"])
def test_absent_model_raises_model_not_found(tmp_path: Path, where: str) -> None:
    root = tmp_path / "models"
    if where == "empty":
        root.mkdir()
    with pytest.raises(ModelNotFoundError) as caught:
        load_eres2net(EngineSettings(model_dir=str(root)))
    assert_download_hint(str(caught.value), ERES2NET)
    assert "downloads disabled" in str(caught.value)


def test_unreachable_hub_fails_fast(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, connects: list[tuple]
) -> None:
    port = closed_port()  # nothing listens there
    monkeypatch.setenv("VOICEPRINT_MODEL_DOWNLOAD", "1")
    monkeypatch.setenv("MODELSCOPE_ENDPOINT", f"http://127.0.0.1:{port}")
    with pytest.raises(ModelNotFoundError) as caught:
        load_campplus(EngineSettings(model_dir=str(tmp_path)))
    assert_download_hint(str(caught.value), CAMPPLUS)
    assert "unreachable" in str(caught.value)
    # One quick probe of the hub, then the error: no download started, no retries.
    assert connects == [("127.0.0.1", port)]


def assert_download_hint(message: str, spec: ModelSpec) -> None:
    assert spec.model_id in message
    assert spec.revision in message
    assert "VOICEPRINT_MODEL_DIR" in message
    assert f"modelscope download {spec.model_id}" in message

"""The sex head: shipped weights, predictions on real speech, training recipe, the command.

The shipped head was trained on every speaker of the LibriSpeech sample, so scoring it on
those files only proves the weights fit the live embedding pipeline (a flipped label or a
changed feature path fails it). Generalisation is tested by fitting a fresh head on some
speakers and scoring it on others it never saw.
"""

from __future__ import annotations

import json
from io import StringIO

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from engine import UnknownEngineError
from engine.attributes import (
    LABELS,
    EmbeddedFiles,
    GenderHead,
    HeadFileError,
    embed_labelled_files,
    file_speaker,
    fit_gender_head,
    load_gender_head,
    read_gender_head,
    read_speaker_sexes,
    save_gender_head,
    speaker_folds,
)
from engine.evaluation import audio_files
from tests.engine.conftest import LIBRISPEECH_DIR, require_shared_audio

PER_SEX = 20


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Embed on one thread: on the busy 2-core CI box, torch's default of one thread per core
    made embedding these files 10x slower (measured: 35 s vs 2.5 s for 10 files)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def sexes() -> dict[str, str]:
    return read_speaker_sexes(require_shared_audio(LIBRISPEECH_DIR) / "SPEAKERS.TXT")


@pytest.fixture(scope="module")
def sample(sexes) -> EmbeddedFiles:
    """The first PER_SEX files of each sex (sorted names), embedded once for the module."""
    files = audio_files(LIBRISPEECH_DIR)
    chosen = [[f for f in files if sexes[file_speaker(f)] == sex][:PER_SEX] for sex in LABELS]
    data = embed_labelled_files(chosen[0] + chosen[1], sexes, "ge2e", progress=False)
    assert not data.skipped and len(data.files) == 2 * PER_SEX
    return data


@pytest.fixture
def head() -> GenderHead:
    head = load_gender_head("ge2e")
    assert head is not None, "engine/heads/gender-ge2e.json is missing: run manage.py train_gender"
    return head


@pytest.fixture(autouse=True)
def fresh_cache():
    load_gender_head.cache_clear()
    yield
    load_gender_head.cache_clear()


# --- the shipped head -------------------------------------------------------------------------


def test_shipped_head_loads_with_its_metadata(head):
    assert head.engine == "ge2e" and head.dim == 256 and head.weights.shape == (256,)
    assert head.labels == ("female", "male")
    assert head.n_speakers == 251 and head.folds == 5
    assert 0.85 <= head.cv_accuracy <= 1.0
    assert len(head.training["cv_fold_accuracy"]) == 5
    assert "librispeech-train-clean-100" in head.source and head.trained_on
    assert load_gender_head("ge2e") is load_gender_head("ge2e")  # cached


def test_predict_gives_a_label_and_probabilities_summing_to_one(head):
    vector = np.random.default_rng(0).normal(size=256).astype(np.float32)
    result = head.predict(vector)
    assert set(result) == {"label", "scores"} and set(result["scores"]) == {"female", "male"}
    assert result["scores"]["female"] + result["scores"]["male"] == pytest.approx(1.0)
    assert all(0.0 <= p <= 1.0 for p in result["scores"].values())
    assert result["label"] == max(result["scores"], key=result["scores"].get)
    # Not normalised by the caller: the same answer as for the unit vector.
    scaled = head.predict(vector * 7)["scores"]["male"]
    assert scaled == pytest.approx(result["scores"]["male"])
    with pytest.raises(ValueError, match="dim 256"):
        head.predict(np.ones(192))


def test_no_head_for_an_engine_without_one():
    assert load_gender_head("eres2net") is None
    with pytest.raises(UnknownEngineError):
        load_gender_head("nope")


def test_shipped_head_matches_the_live_pipeline(head, sample):
    # Training speakers (see the module docstring): a sanity check, not a generalisation one.
    p_male = head.male_probability(sample.x)
    assert np.mean((p_male >= 0.5) == sample.y) >= 0.95
    female = head.predict(sample.x[0])
    assert female["label"] == "female" and female["scores"]["female"] > 0.5


# --- training on real speech ------------------------------------------------------------------


def test_a_fresh_head_generalises_to_unseen_speakers(sample):
    train = np.r_[0:10, PER_SEX : PER_SEX + 10]  # 10 speakers of each sex
    test = np.setdiff1d(np.arange(len(sample.y)), train)  # the other 20, never seen
    speakers = [sample.speakers[i] for i in train]
    fresh = fit_gender_head(sample.x[train], sample.y[train], speakers, folds=4)
    assert np.mean((fresh.male_probability(sample.x[test]) >= 0.5) == sample.y[test]) >= 0.85
    # Its own cross-validation is held-out accuracy too, on the 20 training speakers.
    assert fresh.cv_accuracy >= 0.8 and fresh.n_speakers == 20


def test_train_gender_command_end_to_end(sample, tmp_path):
    folder = tmp_path / "libri"
    folder.mkdir()
    for f in sample.files[:4] + sample.files[PER_SEX : PER_SEX + 4]:
        (folder / f.name).symlink_to(f)
    (folder / "999999-1-0000.flac").symlink_to(sample.files[0])  # speaker not in SPEAKERS.TXT
    (folder / "19-1-0001.flac").write_bytes(b"not audio")
    (folder / "SPEAKERS.TXT").symlink_to(LIBRISPEECH_DIR / "SPEAKERS.TXT")
    out = StringIO()
    call_command(
        "train_gender",
        f"--folder={folder}",
        f"--out={tmp_path / 'head.json'}",
        "--folds=2",
        "--no-progress",
        stdout=out,
    )
    assert "8 used, 2 skipped" in out.getvalue()
    assert "cross-validated accuracy" in out.getvalue()
    trained = read_gender_head(tmp_path / "head.json")
    assert trained.dim == 256 and trained.n_speakers == 8 and trained.folds == 2
    assert trained.training["n_female"] == trained.training["n_male"] == 4
    assert (tmp_path / "head.json").stat().st_size < 10_000


def test_train_gender_command_without_data_says_where_it_looks(tmp_path):
    with pytest.raises(CommandError, match=r"training data not found at .*missing"):
        call_command("train_gender", f"--folder={tmp_path / 'missing'}", "--no-progress")


def test_speakers_txt_is_read_by_its_columns(sexes, tmp_path):
    assert len(sexes) >= 251
    assert sexes["19"] == "female" and sexes["26"] == "male"
    bad = tmp_path / "SPEAKERS.TXT"
    bad.write_text("; comment\n14 | X | train-clean-360 | 25.03 | Someone\n")
    with pytest.raises(ValueError, match=r"SPEAKERS\.TXT:2"):
        read_speaker_sexes(bad)


# --- the recipe, on synthetic data ------------------------------------------------------------


def synthetic(n_speakers: int = 40, files_each: int = 2, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(n_speakers) % 2, files_each)
    x = rng.normal(size=(len(y), 16)) + 1.5 * (2 * y[:, None] - 1) * (np.arange(16) < 4)
    speakers = [f"s{i}" for i in np.repeat(np.arange(n_speakers), files_each)]
    return x / np.linalg.norm(x, axis=1, keepdims=True), y, speakers


def test_folds_are_speaker_disjoint_and_stratified():
    _, y, speakers = synthetic(n_speakers=23, files_each=3)
    folds = speaker_folds(speakers, y, 4, seed=0)
    for speaker in set(speakers):
        assert len({folds[i] for i, s in enumerate(speakers) if s == speaker}) == 1
    for k in range(4):
        counts = np.bincount(y[folds == k], minlength=2) // 3  # speakers per sex in fold k
        assert counts.min() >= 2 and counts.max() <= 3


def test_fitting_is_deterministic_and_learns():
    x, y, speakers = synthetic()
    first = fit_gender_head(x, y, speakers, engine_name="ge2e", folds=4, seed=3)
    second = fit_gender_head(x, y, speakers, engine_name="ge2e", folds=4, seed=3)
    np.testing.assert_array_equal(first.weights, second.weights)
    assert first.training["cv_fold_accuracy"] == second.training["cv_fold_accuracy"]
    assert first.cv_accuracy >= 0.9 and first.training["lambda"] in first.training["lambda_grid"]
    with pytest.raises(ValueError, match="at least 4 are needed"):
        fit_gender_head(x[:6], y[:6], speakers[:6], folds=4)


# --- the file ---------------------------------------------------------------------------------


def test_save_and_read_round_trip(tmp_path):
    x, y, speakers = synthetic()
    head = fit_gender_head(x, y, speakers, folds=4)
    save_gender_head(head, tmp_path / "h.json")
    again = read_gender_head(tmp_path / "h.json")
    np.testing.assert_allclose(again.weights, head.weights, rtol=1e-6)
    assert again.cv_accuracy == pytest.approx(head.cv_accuracy)
    assert again.predict(x[0])["scores"]["male"] == pytest.approx(
        head.predict(x[0])["scores"]["male"], abs=1e-5
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda p: p["weights"].pop(), "255 weights for dim 256"),
        (lambda p: p.update(bias=float("nan")), "non-finite"),
        (lambda p: p.update(labels=["male", "female"]), "labels must be"),
        (lambda p: p.pop("weights"), "weights"),
        (lambda p: p.update(format="other"), "not a voiceprint-gender-head/1 file"),
    ],
)
def test_a_corrupt_head_file_raises_a_clear_error(head, tmp_path, change, message):
    payload = {
        "format": "voiceprint-gender-head/1",
        "engine": "ge2e",
        "dim": 256,
        "labels": ["female", "male"],
        "bias": 0.0,
        "weights": head.weights.tolist(),
    }
    change(payload)
    path = tmp_path / "gender-ge2e.json"
    path.write_text(json.dumps(payload))
    with pytest.raises(HeadFileError, match=f"corrupt gender head .*{message}"):
        read_gender_head(path)


def test_load_refuses_an_unreadable_shipped_file(monkeypatch, tmp_path):
    monkeypatch.setattr("engine.attributes.HEADS_DIR", tmp_path)
    (tmp_path / "gender-ge2e.json").write_text('{"format": "voiceprint-gender-head/1", "dim"')
    with pytest.raises(HeadFileError, match=r"cannot read gender head .*gender-ge2e\.json"):
        load_gender_head("ge2e")

"""What a cosine means in the probe's conditions: cohort normalisation and calibration.

A raw cosine does not mean the same thing for a clean 10 s recording and for 2 s over a TV:
noise pulls every score of the probe down, unevenly across voices. Two shipped, per-engine
artefacts correct for it (made by management commands, like the gender head):

* **the impostor cohort** (``heads/cohort-<engine>.npy``, ``manage.py build_cohort``):
  embeddings of speakers who are nobody's voice. Adaptive symmetric normalisation (AS-norm)
  scores a pair by how far its cosine stands above the ``top_n`` cohort scores of each side::

      z = ((s - mean_e) / std_e + (s - mean_p) / std_p) / 2

  where mean/std are those of the enrollment's (e) and the probe's (p) top_n cohort cosines.
  The probe side measures the impostor score distribution *of this probe, in its noise*, so
  one threshold on z keeps about the same false-accept rate in every condition.
* **the calibration** (``heads/calibration-<engine>.json``, ``manage.py fit_calibration``):
  a logistic model of the log-likelihood ratio that the probe is the voice, from z and the
  probe's quality (speech seconds, SNR), and the map from a voice's cosine ``threshold`` to
  a z threshold (:meth:`Scorer.z_threshold`).

An engine without them keeps the raw cosine rule (:func:`load_scorer` returns None).
"""

from __future__ import annotations

import datetime
import functools
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import EngineError
from engine.logistic import fit_logistic, sigmoid

logger = logging.getLogger(__name__)

HEADS_DIR = Path(__file__).resolve().parent / "heads"
FORMAT = "voiceprint-calibration/1"
#: Cohort scores per side that AS-norm averages (of a few hundred cohort embeddings).
DEFAULT_TOP_N = 50
#: The quality features are clipped to where the calibration data has them.
SNR_RANGE_DB = (0.0, 30.0)
SPEECH_RANGE_SECONDS = (0.5, 8.0)
#: L2 penalty of the calibration fit: small, there are five features and many trials.
CALIBRATION_LAMBDA = 1e-3


class ScoringFileError(EngineError):
    """A cohort or calibration file is missing a part, corrupt or for another engine."""


def quality_features(
    z: np.ndarray, speech_seconds: np.ndarray | float, snr_db: np.ndarray | float
) -> np.ndarray:
    """The calibration's inputs: z, and z's slope and offset moved by SNR and length.

    ``snr`` is the SNR clipped to 0-30 dB and scaled to 0-1; ``length`` is ln(speech / 2 s)
    with the speech clipped to 0.5-8 s.
    """
    z = np.asarray(z, dtype=np.float64)
    snr = (np.clip(snr_db, *SNR_RANGE_DB) - SNR_RANGE_DB[0]) / (SNR_RANGE_DB[1] - SNR_RANGE_DB[0])
    length = np.log(np.clip(speech_seconds, *SPEECH_RANGE_SECONDS) / 2.0)
    snr, length = np.broadcast_to(snr, z.shape), np.broadcast_to(length, z.shape)
    return np.stack([z, z * snr, z * length, snr, length], axis=-1)


@dataclass(frozen=True)
class ThresholdMap:
    """A cosine threshold as a z threshold at the same false-accept rate.

    Both impostor distributions (raw cosine, and z) of clean probes are summarised by their
    mean and standard deviation: a threshold ``k`` impostor deviations above the impostor
    mean in cosine is ``k`` deviations above it in z. Linear, monotonic, and defined for any
    threshold (the empirical tail is too thin to invert at the rates that matter).
    """

    cosine_mean: float
    cosine_std: float
    z_mean: float
    z_std: float

    def z_threshold(self, cosine_threshold: float) -> float:
        deviations = (cosine_threshold - self.cosine_mean) / self.cosine_std
        return self.z_mean + deviations * self.z_std


@dataclass(frozen=True)
class Calibration:
    engine: str
    dim: int
    weights: np.ndarray
    bias: float
    #: The fit set's log prior odds of a target trial: subtracted, so the output is an LLR.
    prior_logit: float
    threshold_map: ThresholdMap
    #: A probe that misses but whose best voice has at least this probability is "uncertain".
    uncertain_probability: float
    #: A match whose runner-up is within this many z units of it is "uncertain".
    close_margin: float
    top_n: int = DEFAULT_TOP_N
    training: dict[str, Any] = field(default_factory=dict)

    def llr(self, z: np.ndarray, speech_seconds: float, snr_db: float) -> np.ndarray:
        features = quality_features(z, speech_seconds, snr_db)
        return features @ self.weights + self.bias - self.prior_logit


#: Mean and standard deviation of each vector's top_n cohort cosines.
CohortStats = tuple[np.ndarray, np.ndarray]


def cohort_stats(vectors: np.ndarray, cohort: np.ndarray, *, top_n: int) -> CohortStats:
    """Mean and standard deviation of each vector's top_n cosines against ``cohort``."""
    scores = np.atleast_2d(np.asarray(vectors, dtype=np.float32)) @ cohort.T
    n = min(top_n, scores.shape[1])
    top = -np.partition(-scores, n - 1, axis=1)[:, :n]
    return top.mean(axis=1), np.maximum(top.std(axis=1), 1e-6)


def as_norm(cosines: np.ndarray, enrollment: CohortStats, probe: CohortStats) -> np.ndarray:
    """AS-norm z of cosines, from the cohort stats of their enrollment and probe sides."""
    (enrol_mean, enrol_std), (probe_mean, probe_std) = enrollment, probe
    cosines = np.asarray(cosines, dtype=np.float64)
    return 0.5 * ((cosines - enrol_mean) / enrol_std + (cosines - probe_mean) / probe_std)


@dataclass(frozen=True)
class Scorer:
    """An engine's cohort and calibration: cosine -> z -> LLR -> probability."""

    cohort: np.ndarray
    calibration: Calibration

    @property
    def engine(self) -> str:
        return self.calibration.engine

    def cohort_stats(self, vectors: np.ndarray) -> CohortStats:
        return cohort_stats(vectors, self.cohort, top_n=self.calibration.top_n)

    def normalise(
        self, cosines: np.ndarray, enrollments: np.ndarray, probe: np.ndarray
    ) -> np.ndarray:
        """AS-norm z of the cosines between ``probe`` and each row of ``enrollments``."""
        return as_norm(cosines, self.cohort_stats(enrollments), self.cohort_stats(probe))

    def llr(self, z: np.ndarray, *, speech_seconds: float, snr_db: float) -> np.ndarray:
        return self.calibration.llr(z, speech_seconds, snr_db)

    @staticmethod
    def probability(llr: np.ndarray) -> np.ndarray:
        """P(the probe is the voice) at even prior odds."""
        return sigmoid(np.asarray(llr, dtype=np.float64))

    def z_threshold(self, cosine_threshold: float) -> float:
        return self.calibration.threshold_map.z_threshold(cosine_threshold)


# --- loading and saving -----------------------------------------------------------------------


def cohort_path(engine_name: str, heads_dir: Path = HEADS_DIR) -> Path:
    return heads_dir / f"cohort-{engine_name}.npy"


def calibration_path(engine_name: str, heads_dir: Path = HEADS_DIR) -> Path:
    return heads_dir / f"calibration-{engine_name}.json"


@functools.cache
def load_scorer(engine_name: str) -> Scorer | None:
    """The shipped scorer of ``engine_name``; None when it has no cohort or calibration.

    Cached per process (``load_scorer.cache_clear()`` forgets it). A corrupt file is logged
    and treated as absent: the raw cosine rule is a safe fallback, a crash is not.
    """
    return read_scorer(engine_name, HEADS_DIR)


def read_scorer(engine_name: str, heads_dir: Path) -> Scorer | None:
    cohort_file, calibration_file = (
        cohort_path(engine_name, heads_dir),
        calibration_path(engine_name, heads_dir),
    )
    if not (cohort_file.is_file() and calibration_file.is_file()):
        return None
    try:
        calibration = read_calibration(calibration_file)
        cohort = np.load(cohort_file, allow_pickle=False).astype(np.float32)
    except (OSError, ValueError, ScoringFileError) as exc:
        logger.error(
            "scoring files of engine %s are unusable, raw cosine rule: %s", engine_name, exc
        )
        return None
    if calibration.engine != engine_name or cohort.ndim != 2 or cohort.shape[1] != calibration.dim:
        logger.error(
            "scoring files of engine %s do not match it (calibration for %r, cohort shape %s)",
            engine_name,
            calibration.engine,
            cohort.shape,
        )
        return None
    return Scorer(cohort=cohort, calibration=calibration)


def scoring_status(engine_name: str) -> dict[str, Any]:
    """For /healthz: whether decisions of this engine are calibrated, and from what."""
    scorer = load_scorer(engine_name)
    if scorer is None:
        return {
            "calibrated": False,
            "rule": "raw cosine >= the voice's threshold (no cohort or calibration for "
            f"this engine: run `manage.py build_cohort` and `fit_calibration` with {engine_name})",
        }
    return {
        "calibrated": True,
        "rule": "AS-norm z >= the z of the voice's threshold and cosine >= the threshold "
        "less a relief for noise (at most 0.1); quality-aware calibration",
        "cohort_size": len(scorer.cohort),
        "trained_on": scorer.calibration.training.get("trained_on"),
    }


def read_calibration(path: Path) -> Calibration:
    try:
        payload = json.loads(Path(path).read_text(encoding="utf-8"))
        if payload.get("format") != FORMAT:
            raise ValueError(f"format {payload.get('format')!r}, expected {FORMAT!r}")
        mapping = payload["threshold_map"]
        return Calibration(
            engine=str(payload["engine"]),
            dim=int(payload["dim"]),
            weights=np.asarray(payload["weights"], dtype=np.float64).reshape(5),
            bias=float(payload["bias"]),
            prior_logit=float(payload["prior_logit"]),
            threshold_map=ThresholdMap(**{k: float(mapping[k]) for k in _MAP_KEYS}),
            uncertain_probability=float(payload["uncertain"]["probability"]),
            close_margin=float(payload["uncertain"]["close_margin"]),
            top_n=int(payload["cohort"]["top_n"]),
            training=dict(payload.get("training", {})),
        )
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ScoringFileError(f"cannot read calibration {path}: {exc}") from exc
    except (KeyError, TypeError, ValueError) as exc:
        raise ScoringFileError(f"corrupt calibration {path}: {exc}") from exc


_MAP_KEYS = ("cosine_mean", "cosine_std", "z_mean", "z_std")


def save_scorer(scorer: Scorer, heads_dir: Path = HEADS_DIR, *, script: str = "") -> None:
    """Write the cohort (.npy) and calibration (.json) files of ``scorer``."""
    calibration = scorer.calibration
    heads_dir.mkdir(parents=True, exist_ok=True)
    np.save(cohort_path(calibration.engine, heads_dir), scorer.cohort.astype(np.float32))
    mapping = calibration.threshold_map
    payload = {
        "format": FORMAT,
        "engine": calibration.engine,
        "dim": calibration.dim,
        "model": "llr = weights . [z, z*snr, z*length, snr, length] + bias - prior_logit; "
        "snr = clip(snr_db, 0, 30) / 30, length = ln(clip(speech_seconds, 0.5, 8) / 2); "
        "z = AS-norm of the cosine against the cohort file",
        "weights": [round(float(w), 6) for w in calibration.weights],
        "bias": round(calibration.bias, 6),
        "prior_logit": round(calibration.prior_logit, 6),
        "cohort": {
            "file": cohort_path(calibration.engine).name,
            "size": len(scorer.cohort),
            "top_n": calibration.top_n,
        },
        "threshold_map": {k: round(float(getattr(mapping, k)), 6) for k in _MAP_KEYS},
        "uncertain": {
            "probability": calibration.uncertain_probability,
            "close_margin": calibration.close_margin,
        },
        "training": calibration.training,
        "script": script,
    }
    path = calibration_path(calibration.engine, heads_dir)
    path.write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")


# --- fitting --------------------------------------------------------------------------------


@dataclass
class Trials:
    """Scored enrollment/probe pairs: what the calibration is fitted on."""

    cosine: np.ndarray
    z: np.ndarray
    speech_seconds: np.ndarray
    snr_db: np.ndarray
    target: np.ndarray
    #: Probes of clean recordings (the threshold map is fitted on them).
    clean: np.ndarray


def fit_calibration(
    trials: Trials,
    *,
    engine: str,
    dim: int,
    top_n: int = DEFAULT_TOP_N,
    uncertain_probability: float,
    close_margin: float,
    training: dict[str, Any] | None = None,
) -> Calibration:
    """Logistic LLR model on ``trials`` and the cosine -> z threshold map of its clean part."""
    target = trials.target.astype(np.float64)
    if target.all() or not target.any():
        raise ValueError("calibration needs both same-speaker and different-speaker trials")
    features = quality_features(trials.z, trials.speech_seconds, trials.snr_db)
    weights, bias = fit_logistic(features, target, CALIBRATION_LAMBDA)
    prior = float(target.mean())
    impostor_clean = (~trials.target.astype(bool)) & trials.clean.astype(bool)
    if not impostor_clean.any():
        raise ValueError("the threshold map needs different-speaker trials of clean probes")
    cosines, zs = trials.cosine[impostor_clean], trials.z[impostor_clean]
    mapping = ThresholdMap(
        cosine_mean=float(cosines.mean()),
        cosine_std=float(cosines.std()),
        z_mean=float(zs.mean()),
        z_std=float(zs.std()),
    )
    return Calibration(
        engine=engine,
        dim=dim,
        weights=weights,
        bias=bias,
        prior_logit=float(np.log(prior / (1 - prior))),
        threshold_map=mapping,
        uncertain_probability=uncertain_probability,
        close_margin=close_margin,
        top_n=top_n,
        training={
            "trained_on": datetime.date.today().isoformat(),
            "target_trials": int(target.sum()),
            "nontarget_trials": int(len(target) - target.sum()),
            **(training or {}),
        },
    )

"""L2-penalised logistic regression in numpy: the small heads (gender, score calibration).

Newton's method with backtracking; a few hundred features and tens of thousands of rows fit
in well under a second, with no scikit-learn dependency.
"""

from __future__ import annotations

import numpy as np


def fit_logistic(x: np.ndarray, y: np.ndarray, lam: float) -> tuple[np.ndarray, float]:
    """L2-penalised logistic regression by Newton's method on the raw embeddings -> (w, b)."""
    if len(x) < x.shape[1]:
        # With an isotropic penalty and a free intercept the optimal w lies in the span of the
        # training rows, so fit in an orthonormal basis of it: the same answer, and n x n
        # Newton systems instead of dim x dim (cross-validation does a few hundred fits).
        _, _, basis = np.linalg.svd(x, full_matrices=False)
        u, b = fit_logistic(x @ basis.T, y, lam)
        return basis.T @ u, b
    a = np.hstack([x, np.ones((len(x), 1))])
    penalty = np.full(a.shape[1], lam)
    penalty[-1] = 0.0  # the intercept is not penalised
    theta = np.zeros(a.shape[1])

    def objective(t: np.ndarray) -> float:
        z = a @ t
        # log(1 + e^z) - y z, computed without overflow.
        return float(np.sum(np.logaddexp(0.0, z) - y * z) + 0.5 * np.sum(penalty * t * t))

    current = objective(theta)
    for _ in range(100):
        p = sigmoid(a @ theta)
        gradient = a.T @ (p - y) + penalty * theta
        hessian = (a.T * (p * (1 - p))) @ a + np.diag(penalty)
        # A tiny ridge keeps the solve well posed when every p saturates (separable data).
        step = np.linalg.solve(hessian + 1e-10 * np.eye(len(theta)), gradient)
        scale = 1.0
        while True:  # backtracking: Newton steps can overshoot far from the optimum
            candidate = theta - scale * step
            value = objective(candidate)
            if value <= current or scale < 1e-6:
                break
            scale /= 2
        theta, previous, current = candidate, current, value
        if previous - current <= 1e-10 * max(1.0, abs(current)):
            break
    return theta[:-1], float(theta[-1])


def sigmoid(z: np.ndarray) -> np.ndarray:
    """The logistic function, without overflow."""
    return np.exp(-np.logaddexp(0.0, -z))

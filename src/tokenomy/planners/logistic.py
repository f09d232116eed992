"""L2-regularised logistic regression in numpy: the one fitter the difficulty model uses.

Newton's method on a few hundred to a few thousand rows is exact, deterministic
and needs no extra dependency.
"""

from __future__ import annotations

import math

import numpy as np


def fit_logistic(x: np.ndarray, y: np.ndarray, c: float, iterations: int = 50) -> np.ndarray:
    """Weights (last = intercept) minimising log-loss + ||w||^2 / (2c), as scikit-learn's C."""
    n, d = x.shape
    xb = np.hstack([x, np.ones((n, 1))])
    w = np.zeros(d + 1)
    penalty = np.full(d + 1, 1.0 / c)
    penalty[-1] = 0.0  # the intercept is not shrunk
    for _ in range(iterations):
        p = predict(x, w)
        grad = xb.T @ (p - y) + penalty * w
        hess = (xb * (p * (1 - p))[:, None]).T @ xb + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hess, grad)
        w -= step
        if float(np.max(np.abs(step))) < 1e-7:
            break
    return w


def predict(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Probabilities for the rows of `x` under weights `w` from `fit_logistic`."""
    return 1.0 / (1.0 + np.exp(-np.clip(x @ w[:-1] + w[-1], -40, 40)))


def sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-40.0, min(40.0, z))))

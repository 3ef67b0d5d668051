"""The BRISQUE quality regressor (an epsilon-SVR with RBF kernel in libsvm text format), read from disk at run time.

The published model is the LIVE-trained ``allmodel`` with its ``svm-scale`` range file ``allrange`` from the
original BRISQUE release; neither is shipped with this package (see the README). Models retrained on other
feature implementations (e.g. the PyPI packages ``brisque`` / ``image-quality``, whose features use different
resizing, borders and shifts) do not fit the reference features computed here and should not be paired with them.
"""
import os
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np


@dataclass(frozen=True)
class BrisqueRegressor:
    """RBF epsilon-SVR ``sum_i coef_i exp(-gamma |x - sv_i|^2) - rho`` on features scaled to [lower, upper]."""
    gamma: float
    rho: float
    coefs: np.ndarray  # (num_sv,)
    support_vectors: np.ndarray  # (num_sv, 36)
    feature_min: np.ndarray  # (36,)
    feature_max: np.ndarray  # (36,)
    lower: float = -1.0
    upper: float = 1.0

    def predict(self, features: np.ndarray) -> float:
        """Quality score of one 36-vector of BRISQUE features (about 0 best .. 100 worst)."""
        span = self.feature_max - self.feature_min
        scaled = self.lower + (self.upper - self.lower) * (features - self.feature_min) / span
        sq_dist = ((self.support_vectors - scaled[None])**2).sum(1)
        return float(self.coefs @ np.exp(-self.gamma * sq_dist) - self.rho)


def _read_libsvm_model(path: str, num_features: int) -> Tuple[float, float, np.ndarray, np.ndarray]:
    """gamma, rho, coefficients and dense support vectors of a libsvm text model with an RBF kernel."""
    header, rows = {}, []
    with open(path) as f:
        for line in f:
            if line.strip() == 'SV':
                break
            key, _, value = line.strip().partition(' ')
            header[key] = value
        rows = [line.split() for line in f if line.strip()]
    if header.get('svm_type') != 'epsilon_svr' or header.get('kernel_type') != 'rbf':
        raise ValueError(f'BRISQUE model {path}: expected an epsilon_svr with rbf kernel, got '
                         f"{header.get('svm_type')} / {header.get('kernel_type')}")
    coefs = np.array([float(row[0]) for row in rows])
    support_vectors = np.zeros((len(rows), num_features))
    for i, row in enumerate(rows):
        for item in row[1:]:
            index, value = item.split(':')
            support_vectors[i, int(index) - 1] = float(value)
    return float(header['gamma']), float(header['rho']), coefs, support_vectors


def _read_feature_range(path: str, num_features: int) -> Tuple[np.ndarray, np.ndarray, float, float]:
    """Per-feature min and max and the target interval from an ``svm-scale`` range file (``x``, lower upper, rows)."""
    with open(path) as f:
        lines = [line.split() for line in f if line.strip()]
    if not lines or lines[0] != ['x'] or len(lines) < 2:
        raise ValueError(f'BRISQUE range file {path}: expected an svm-scale range file starting with "x"')
    lower, upper = map(float, lines[1])
    low, high = np.zeros(num_features), np.ones(num_features)
    for index, vmin, vmax in lines[2:]:
        low[int(index) - 1], high[int(index) - 1] = float(vmin), float(vmax)
    return low, high, lower, upper


def load_brisque_regressor(svm_model_path: Optional[str], feature_range_path: Optional[str],
                           num_features: int = 36) -> BrisqueRegressor:
    """Load a BRISQUE SVR from a libsvm text model and its svm-scale range file (e.g. ``allmodel``, ``allrange``)."""
    if svm_model_path is None or feature_range_path is None:
        raise FileNotFoundError(
            'calculate_brisque needs the published BRISQUE regressor: set svm_model_path (libsvm model, the original '
            'release\'s "allmodel") and feature_range_path (svm-scale range file, "allrange") in the metric options. '
            'brisque_features() works without them.')
    for path in (svm_model_path, feature_range_path):
        if not os.path.isfile(path):
            raise FileNotFoundError(f'BRISQUE model file not found: {path} (check svm_model_path / feature_range_path)')
    gamma, rho, coefs, support_vectors = _read_libsvm_model(svm_model_path, num_features)
    low, high, lower, upper = _read_feature_range(feature_range_path, num_features)
    return BrisqueRegressor(gamma, rho, coefs, support_vectors, low, high, lower, upper)

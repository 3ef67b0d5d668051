"""The published BRISQUE quality regressor (LIVE-trained epsilon-SVR, RBF kernel), read from disk at run time.

The model is not shipped with this package. By default it is taken from the files of the PyPI package
``brisque`` (Apache-2.0; ``brisque/models/svm.txt`` and ``normalize.pickle``), located without importing that
package, so its own dependencies (libsvm, OpenCV, requests) are not needed. Any libsvm text model with a
matching feature range (the ``.pickle`` of ``brisque`` or an ``svm-scale`` range file such as the original
release's ``allrange``) can be given instead.
"""
import importlib.util
import io
import os
import pickle
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


class _PlainDataUnpickler(pickle.Unpickler):
    """Unpickler for plain containers only: a range file must not be able to run code."""

    def find_class(self, module, name):
        raise pickle.UnpicklingError(f'refusing to load {module}.{name} from a BRISQUE range file')


def _read_feature_range(path: str, num_features: int) -> Tuple[np.ndarray, np.ndarray, float, float]:
    """Per-feature min and max and the target interval, from a ``.pickle`` {min_, max_} or an svm-scale file."""
    if path.endswith('.pickle'):
        with open(path, 'rb') as f:
            data = _PlainDataUnpickler(io.BytesIO(f.read())).load()
        return np.asarray(data['min_'], float), np.asarray(data['max_'], float), -1.0, 1.0
    with open(path) as f:
        lines = [line.split() for line in f if line.strip()]
    if lines[0] != ['x']:
        raise ValueError(f'BRISQUE range file {path}: expected an svm-scale range file starting with "x"')
    lower, upper = map(float, lines[1])
    low, high = np.zeros(num_features), np.ones(num_features)
    for index, vmin, vmax in lines[2:]:
        low[int(index) - 1], high[int(index) - 1] = float(vmin), float(vmax)
    return low, high, lower, upper


def default_model_paths() -> Tuple[Optional[str], Optional[str]]:
    """Paths of the model files of an installed ``brisque`` PyPI package, or (None, None)."""
    spec = importlib.util.find_spec('brisque')
    if spec is None or not spec.submodule_search_locations:
        return None, None
    folder = os.path.join(list(spec.submodule_search_locations)[0], 'models')
    svm, feature_range = os.path.join(folder, 'svm.txt'), os.path.join(folder, 'normalize.pickle')
    return (svm, feature_range) if os.path.isfile(svm) and os.path.isfile(feature_range) else (None, None)


def load_brisque_regressor(svm_model_path: Optional[str] = None,
                           feature_range_path: Optional[str] = None,
                           num_features: int = 36) -> BrisqueRegressor:
    """Load the BRISQUE SVR; without paths, from the installed ``brisque`` package (``pip install brisque``)."""
    if svm_model_path is None and feature_range_path is None:
        svm_model_path, feature_range_path = default_model_paths()
    if svm_model_path is None or feature_range_path is None:
        raise FileNotFoundError(
            'calculate_brisque needs the published BRISQUE model: `pip install brisque` (its model files are '
            'read, the package is not imported), or set both svm_model_path and feature_range_path in the metric '
            'options. brisque_features() works without it.')
    for path in (svm_model_path, feature_range_path):
        if not os.path.isfile(path):
            raise FileNotFoundError(f'BRISQUE model file not found: {path}')
    gamma, rho, coefs, support_vectors = _read_libsvm_model(svm_model_path, num_features)
    low, high, lower, upper = _read_feature_range(feature_range_path, num_features)
    return BrisqueRegressor(gamma, rho, coefs, support_vectors, low, high, lower, upper)

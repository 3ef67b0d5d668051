import numpy as np
import pytest
from basicsr.metrics import calculate_metric
from nss import reference as nss_reference

import slkd_basicsr  # noqa: F401  (registration)
from slkd_basicsr.metrics import brisque_features


def test_features_match_reference_on_photos(photos):
    for name, img in photos.items():
        ours, ref = brisque_features(img), nss_reference.brisque_features(img)
        assert ours.shape == (36, ) and ours.dtype == np.float64
        if name.endswith('-jpeg') or name == 'camera-blur':
            # Exactly flat areas give MSCN products of +-1e-17 whose sign is rounding noise in any implementation
            # (MATLAB included); it moves the left/right counts, hence sigma_l^2, sigma_r^2, eta and a grid step.
            np.testing.assert_allclose(ours, ref, rtol=0.15, atol=2e-3, err_msg=name)
        else:
            np.testing.assert_allclose(ours, ref, rtol=1e-9, atol=1e-12, err_msg=name)


def test_features_react_to_degradation(photos):
    clean, blurred = brisque_features(photos['astronaut']), brisque_features(photos['astronaut-blur'])
    # blur makes MSCN coefficients smaller and their distribution peakier
    assert blurred[1] < clean[1] and blurred[0] < clean[0]


@pytest.mark.parametrize('bad, message', [
    (np.zeros((32, 32, 4)), 'H x W x 3'),
    (np.zeros((32, 32), np.int32), 'dtype'),
    (np.full((32, 32), 300.0), r'\[0, 255\]'),
    (np.zeros((4, 32)), 'too small'),
    ([[0.0]], 'numpy array'),
    (np.random.default_rng(0).uniform(0, 1, (32, 32)), r'looks like a \[0, 1\] image.*multiply it by 255'),
])
def test_bad_input_is_rejected_with_a_clear_message(bad, message):
    with pytest.raises(ValueError, match=message):
        brisque_features(bad)


def _write_tiny_model(folder):
    """A 2-support-vector RBF epsilon-SVR in libsvm text format (sparse rows) and its svm-scale range file."""
    svm = folder / 'model.txt'
    svm.write_text('svm_type epsilon_svr\nkernel_type rbf\ngamma 0.05\nnr_class 2\ntotal_sv 2\nrho -3.5\n'
                   'SV\n2.0 1:0.5 3:-0.25\n-1.5 2:1 \n')
    scale = folder / 'range.txt'
    scale.write_text('x\n-1 1\n' + ''.join(f'{i} 0 {i}\n' for i in range(1, 37)))
    return str(svm), str(scale)


def test_brisque_score_uses_the_libsvm_model(photos, tmp_path):
    svm, scale = _write_tiny_model(tmp_path)
    img = photos['camera']
    x = -1 + 2 * brisque_features(img) / np.arange(1, 37)
    sv = np.zeros((2, 36))
    sv[0, 0], sv[0, 2], sv[1, 1] = 0.5, -0.25, 1.0
    expected = 2.0 * np.exp(-0.05 * ((x - sv[0])**2).sum()) - 1.5 * np.exp(-0.05 * ((x - sv[1])**2).sum()) + 3.5
    opt = {'type': 'calculate_brisque', 'crop_border': 0, 'svm_model_path': svm, 'feature_range_path': scale}
    assert calculate_metric({'img': img, 'img2': img}, opt) == pytest.approx(expected, rel=1e-9)


def test_brisque_score_without_model_says_which_files_to_set(photos, tmp_path):
    with pytest.raises(FileNotFoundError, match='svm_model_path'):
        calculate_metric({'img': photos['camera']}, {'type': 'calculate_brisque', 'crop_border': 0})
    opt = {'type': 'calculate_brisque', 'crop_border': 0, 'svm_model_path': str(tmp_path / 'missing.txt'),
           'feature_range_path': str(tmp_path / 'allrange')}
    with pytest.raises(FileNotFoundError, match='missing.txt'):
        calculate_metric({'img': photos['camera']}, opt)

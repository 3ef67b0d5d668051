import numpy as np
import pytest
from basicsr.metrics import calculate_metric
from nss import reference as nss_reference

import slkd_basicsr  # noqa: F401  (registration)
from slkd_basicsr.metrics import piqe


def test_score_and_masks_match_reference_on_photos(photos):
    for name, img in photos.items():
        score, *masks = piqe(img)
        ref_score, *ref_masks = nss_reference.piqe(img)
        assert score == pytest.approx(ref_score, rel=1e-9), name
        for mask, ref_mask in zip(masks, ref_masks):
            assert mask.dtype == bool and mask.shape == img.shape[:2]
            np.testing.assert_array_equal(mask, ref_mask, err_msg=name)


@pytest.mark.parametrize('value', [0.0, 97.0, 255.0])
def test_uniform_image_scores_100(value):
    score, activity, artifacts, noise = piqe(np.full((40, 50), value))
    assert score == 100.0
    assert not activity.any() and not artifacts.any() and not noise.any()


def test_degradations_score_worse_than_clean(photos):
    for name in ('astronaut', 'coffee', 'chelsea'):
        clean = piqe(photos[name])[0]
        for kind in ('blur', 'noise', 'jpeg'):
            assert piqe(photos[f'{name}-{kind}'])[0] > clean, f'{name}-{kind}'


def test_masks_localise_the_degradation(photos):
    img = photos['astronaut'].copy()
    img[:, 56:] = photos['astronaut-noise'][:, 56:]  # noise on the right half only
    _, activity, _, noise = piqe(img)
    assert noise[:, 64:].mean() > noise[:, :48].mean()
    assert activity[noise].all()  # only active blocks can be noisy


def test_metric_takes_bgr_like_tensor2img(photos):
    rgb = photos['coffee']
    opt = {'type': 'calculate_piqe', 'crop_border': 4}
    assert calculate_metric({'img': rgb[..., ::-1], 'img2': rgb}, opt) == pytest.approx(piqe(rgb[4:-4, 4:-4])[0])
    y_score = calculate_metric({'img': rgb[..., ::-1]}, dict(opt, convert_to='y'))
    assert 0 <= y_score <= 100


def test_float_image_in_0_1_is_refused_not_misread():
    img = np.random.default_rng(0).uniform(0, 1, (32, 32, 3))
    with pytest.raises(ValueError, match=r'piqe: .*\[0, 1\].*multiply it by 255'):
        piqe(img)
    assert piqe(img * 255)[0] == piqe((img * 255).astype(np.float32))[0]  # [0, 255] floats are read as before

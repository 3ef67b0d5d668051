import numpy as np
import pytest

import slkd_basicsr  # noqa: F401  (registers the plugin)
from slkd_basicsr.data.degradations import (add_gaussian_noise, add_haze, add_rain, apply_degradations,
                                            check_degradations, degradation_problems, motion_blur)


def textured(seed=0, size=64):
    return np.random.default_rng(seed).uniform(0.2, 0.8, (size, size, 3)).astype(np.float32)


def test_noise_has_the_requested_std():
    img = np.full((128, 128, 3), 0.5, np.float32)
    out = add_gaussian_noise(img, np.random.default_rng(0), sigma=10)
    assert out.dtype == np.float32 and out.shape == img.shape
    assert abs(float((out - img).std()) * 255 - 10) < 0.5
    assert abs(float(out.mean()) - 0.5) < 0.005


def test_noise_sigma_range_is_sampled_per_call():
    img = np.full((64, 64, 3), 0.5, np.float32)
    rng = np.random.default_rng(1)
    stds = [float((add_gaussian_noise(img, rng, sigma=[5, 20]) - img).std()) * 255 for _ in range(6)]
    assert all(4 < s < 21 for s in stds)
    assert max(stds) - min(stds) > 1


def test_motion_blur_spreads_a_point_along_the_motion():
    img = np.zeros((31, 31, 3), np.float32)
    img[15, 15] = 1
    out = motion_blur(img, np.random.default_rng(0), length=9, angle=0)
    rows, cols = np.nonzero(out[..., 0])
    assert set(rows) == {15} and len(cols) == 9
    assert out.sum() == pytest.approx(img.sum(), rel=1e-5)
    vertical = motion_blur(img, np.random.default_rng(0), length=9, angle=90)
    assert set(np.nonzero(vertical[..., 0])[1]) == {15}


def test_rain_adds_bright_streaks_in_the_rain_direction():
    img = np.full((96, 96, 3), 0.2, np.float32)
    out = add_rain(img, np.random.default_rng(0), density=0.02, length=15, angle=0, brightness=0.8)
    streaks = out[..., 0] - img[..., 0]
    assert (out >= img).all() and streaks.max() == pytest.approx(0.8, abs=1e-5)
    assert np.array_equal(out[..., 0], out[..., 2])
    along = np.abs(np.diff(streaks, axis=0)).mean()
    across = np.abs(np.diff(streaks, axis=1)).mean()
    assert along < 0.5 * across


def test_rain_with_zero_density_leaves_the_image():
    img = textured()
    assert np.array_equal(add_rain(img, np.random.default_rng(0), density=0), img)


def test_haze_raises_the_mean_and_lowers_contrast_more_far_away():
    img = textured()
    out = add_haze(img, np.random.default_rng(0), beta=1.5, airlight=0.95, depth=1.0)
    assert out.mean() > img.mean() + 0.1
    assert out.std() < img.std()
    assert np.allclose(out[-1], img[-1], atol=1e-6)  # depth 1: the bottom row is haze-free
    assert out[0].std() < 0.5 * out[-1].std()


def test_apply_degradations_is_reproducible_and_composes_in_order():
    img = textured()
    specs = check_degradations([{'type': 'rain'}, {'type': 'noise', 'sigma': [5, 50]}, {'type': 'haze'}])
    first = apply_degradations(img, specs, np.random.default_rng(7))
    assert np.array_equal(first, apply_degradations(img, specs, np.random.default_rng(7)))
    assert not np.array_equal(first, apply_degradations(img, specs, np.random.default_rng(8)))
    assert first.dtype == np.float32 and 0 <= first.min() and first.max() <= 1
    blur_then_noise = apply_degradations(img, [{'type': 'motion_blur', 'length': 9, 'angle': 0},
                                               {'type': 'noise', 'sigma': 25}], np.random.default_rng(0))
    noise_then_blur = apply_degradations(img, [{'type': 'noise', 'sigma': 25},
                                               {'type': 'motion_blur', 'length': 9, 'angle': 0}],
                                         np.random.default_rng(0))
    assert np.abs(np.diff(blur_then_noise, axis=1)).mean() > 2 * np.abs(np.diff(noise_then_blur, axis=1)).mean()


def test_no_degradations_is_an_identity_copy():
    img = textured()
    out = apply_degradations(img, check_degradations([]), np.random.default_rng(0))
    assert np.array_equal(out, img) and out is not img


@pytest.mark.parametrize('specs, words', [
    ({'type': 'rain'}, 'must be a list'),
    ([{'sigma': 5}], 'degradations[0]'),
    ([{'type': 'snow'}], "unknown type 'snow'"),
    ([{'type': 'noise', 'sigma': 5}, {'type': 'haze', 'density': 1}], "degradations[1] (haze): unknown parameter"),
    ([{'type': 'noise', 'sigma': [50, 5]}], 'degradations[0] (noise): bad sigma [50, 5]; expected a number'),
    ([{'type': 'motion_blur', 'length': 'long'}], "degradations[0] (motion_blur): bad length 'long'"),
])
def test_bad_degradation_options_are_named(specs, words):
    with pytest.raises(ValueError) as err:
        check_degradations(specs)
    assert words in str(err.value)


@pytest.mark.parametrize('spec, words', [
    ({'type': 'rain', 'density': 5.0}, 'degradations[0].density (rain): 5.0 is out of range; density must be '
                                       'between 0 and 1'),
    ({'type': 'rain', 'density': [0.01, 1.5]}, 'degradations[0].density (rain): [0.01, 1.5] is out of range'),
    ({'type': 'rain', 'brightness': -0.1}, 'degradations[0].brightness (rain): -0.1 is out of range'),
    ({'type': 'rain', 'width': 0}, 'width must be >= 1'),
    ({'type': 'rain', 'angle': 120}, 'angle must be between -90 and 90'),
    ({'type': 'noise', 'sigma': -5}, 'degradations[0].sigma (noise): -5 is out of range; sigma must be between 0 and '
                                     '255'),
    ({'type': 'noise', 'sigma': [5, 300]}, 'degradations[0].sigma (noise): [5, 300]'),
    ({'type': 'noise', 'sigma': float('nan')}, 'degradations[0].sigma (noise): nan is out of range'),
    ({'type': 'motion_blur', 'length': 0.5}, 'degradations[0].length (motion_blur): 0.5 is out of range; length must '
                                             'be >= 1'),
    ({'type': 'motion_blur', 'angle': 400}, 'angle must be between -180 and 180'),
    ({'type': 'haze', 'beta': -1}, 'degradations[0].beta (haze): -1 is out of range; beta must be >= 0'),
    ({'type': 'haze', 'airlight': 1.2}, 'degradations[0].airlight (haze)'),
    ({'type': 'haze', 'depth': [0.5, 2]}, 'degradations[0].depth (haze)'),
    ({'type': 'haze', 'beta': float('inf')}, 'beta must be >= 0'),
])
def test_parameters_outside_their_range_are_refused(spec, words):
    with pytest.raises(ValueError) as err:
        check_degradations([spec])
    assert words in str(err.value)


def test_every_problem_is_listed_on_its_own_line():
    with pytest.raises(ValueError) as err:
        check_degradations([{'type': 'rain', 'density': 5.0, 'brightness': 2},
                            {'type': 'snow'},
                            {'type': 'noise', 'sigma': -1, 'sigmaa': 3}])
    lines = str(err.value).splitlines()
    assert len(lines) == 5
    assert lines[0].startswith('degradations[0].density (rain): 5.0')
    assert lines[1].startswith('degradations[0].brightness (rain): 2')
    assert lines[2].startswith("degradations[1]: unknown type 'snow'")
    assert lines[3].startswith("degradations[2] (noise): unknown parameter(s) ['sigmaa']")
    assert lines[4].startswith('degradations[2].sigma (noise): -1')


@pytest.mark.parametrize('spec', [
    {'type': 'rain', 'density': [0, 1], 'length': 1, 'angle': [-90, 90], 'brightness': [0, 1], 'width': 1},
    {'type': 'noise', 'sigma': [0, 255]},
    {'type': 'motion_blur', 'length': [1, 41], 'angle': [-180, 180]},
    {'type': 'haze', 'beta': [0, 3], 'airlight': [0, 1], 'depth': [0, 1]},
])
def test_the_ends_of_each_range_are_allowed(spec):
    assert check_degradations([spec]) == [spec]


def test_degradation_problems_is_empty_for_valid_specs():
    assert degradation_problems([{'type': 'rain', 'density': 0.02}, {'type': 'noise', 'sigma': [5, 30]}]) == []
    assert degradation_problems('rain') == ["degradations must be a list (use [] for clean->clean pairs), got 'rain'."]

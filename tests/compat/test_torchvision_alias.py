"""``import basicsr`` works on torchvision without ``functional_tensor``."""


def test_basicsr_degradations_import():
    from basicsr.data import degradations
    assert callable(degradations.random_add_gaussian_noise_pt)

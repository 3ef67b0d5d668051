"""The one tiny Restormer definition and the networks derived from it."""
import torch
from basicsr.archs import build_network

from slkd_basicsr.complexity import count_params
from slkd_basicsr.recipes import demo_recipe
from slkd_basicsr.recipes.tiny_nets import tiny_restormer


def test_overrides_replace_in_place_and_add_at_the_end():
    base = tiny_restormer()
    opt = tiny_restormer(dim=16, global_residual=False)
    assert list(opt) == list(base) + ['global_residual']
    assert {**base, 'dim': 16, 'global_residual': False} == opt
    base['num_blocks'].append(1)
    assert tiny_restormer()['num_blocks'] == [1, 1, 1, 1]  # every call gets its own lists


def test_demo_networks_restore_rgb_at_any_size_divisible_by_8():
    x = torch.rand(1, 3, 24, 40)
    for network in (demo_recipe.TEACHER, demo_recipe.STUDENT, tiny_restormer()):
        assert build_network(dict(network))(x).shape == x.shape
    assert demo_recipe.STUDENT == {**demo_recipe.TEACHER, 'dim': 4, 'num_blocks': [1, 1, 1, 1], 'heads': [1, 1, 2, 2]}
    assert demo_recipe.TEACHER_B == {**demo_recipe.TEACHER, 'global_residual': False}


def test_student_has_at_most_15_percent_of_the_teachers_parameters():
    teacher, student = (count_params(build_network(dict(n))) for n in (demo_recipe.TEACHER, demo_recipe.STUDENT))
    assert student <= 0.15 * teacher

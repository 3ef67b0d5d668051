"""A validation or test set's ``name`` is the folder its images are saved in: plain, and its own."""
import pytest

from helpers import in_process, sr_options
from slkd_basicsr.checks.options import options_problems

PAIRS = {'train': {'gt': 'data/train/gt', 'lq': 'data/train/lq'}, 'val': {'gt': 'data/val/gt', 'lq': 'data/val/lq'}}


def options(is_train):
    opt = in_process(sr_options(PAIRS))
    if not is_train:
        opt.update(is_train=False)
        opt['datasets'] = {'test_1': opt['datasets']['val']}
        opt['path']['pretrain_network_g'] = 'net_g.pth'
    return opt


def name_problems(opt, is_train):
    return [line for line in options_problems(opt, is_train) if '.name: ' in line]


@pytest.mark.parametrize('name', ['../../../x', 'a/b', 'a\\b', '..', '.'])
def test_a_name_with_a_path_separator_or_dots_is_refused(name):
    opt = options(False)
    opt['datasets']['test_1']['name'] = name
    assert name_problems(opt, False) == [
        f"datasets.test_1.name: {name!r} names a folder outside results/<name>/visualization/, where this set's "
        "images are saved; use a plain name without path separators or '..'."]


def test_two_validation_sets_of_one_name_are_refused_in_training():
    opt = options(True)
    opt['datasets']['val_2'] = dict(opt['datasets']['val'])
    assert name_problems(opt, True) == [
        "datasets.val_2.name: 'generated_val' is also the name of datasets.val: both sets would save their images "
        'into experiments/<name>/visualization/generated_val/, one overwriting the other. Give each set its own name.']


def test_a_name_that_is_not_a_string_is_refused():
    opt = options(False)
    opt['datasets']['test_1']['name'] = 5
    assert name_problems(opt, False) == [
        'datasets.test_1.name: must be a string (the folder its images are saved in under '
        'results/<name>/visualization/), got 5.']


def test_the_train_set_name_is_not_a_folder():
    opt = options(True)
    opt['datasets']['train']['name'] = opt['datasets']['val']['name']
    assert name_problems(opt, True) == []

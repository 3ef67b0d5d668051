"""Datasets built once while a run starts: equal options share one, other options and a new start build anew."""
import copy

from helpers import paired_dataset
from slkd_basicsr.data import built_datasets


def test_equal_options_share_one_set_until_forgotten(image_pairs, basicsr_log):
    built_datasets.forget()
    opt = {**paired_dataset(image_pairs['val'], 'val'), 'phase': 'val', 'scale': 1}
    first = built_datasets.shared_dataset(opt)
    assert built_datasets.shared_dataset(copy.deepcopy(opt)) is first
    assert built_datasets.shared_dataset({**opt, 'name': 'other'}) is not first
    assert built_datasets.build_dataset(opt) is first
    assert basicsr_log == ['Dataset [PairedImageDataset] - generated_val is built.']  # BasicSR's line
    first.opt['name'] = 'changed by its reader'  # what a dataset does with its options is its own
    assert built_datasets.shared_dataset(opt) is first
    built_datasets.forget()
    assert built_datasets.shared_dataset(opt) is not first

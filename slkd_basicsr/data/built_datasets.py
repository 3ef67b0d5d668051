"""The datasets a run builds while it starts, built once and shared by everything that reads them then.

The run checks build the train set (its length) and every validation or test set (its first image) before
anything is made (:mod:`slkd_basicsr.checks.run`); BasicSR's ``train.py`` and ``test.py`` build them again, and the
SLKD teacher check reads the first validation set once more. A folder dataset lists its folders when it is built
(an LMDB one reads its ``meta_info.txt``), which on a large or network folder takes seconds, and two builds could
see two different listings. So the checks keep what they build here (:func:`shared_dataset`), and the others take
it when their options are equal: the entry points hand it to BasicSR (:mod:`slkd_basicsr.pipeline.datasets`), the
model reads it for its teacher check. :func:`forget` drops them at the next start (each run's checks call it
first), so a later run in the same process lists its folders anew.
"""
import copy
from typing import Any, Dict, List, Tuple

from basicsr.utils import get_root_logger
from basicsr.utils.registry import DATASET_REGISTRY
from torch.utils.data import Dataset

_built: List[Tuple[Dict[str, Any], Dataset]] = []


def forget() -> None:
    """Drop every kept dataset: the next :func:`shared_dataset` call builds anew."""
    _built.clear()


def shared_dataset(dataset_opt: Dict[str, Any]) -> Dataset:
    """The dataset of ``dataset_opt`` (BasicSR's ``datasets.<phase>`` options), built once since :func:`forget`:
    a later call with equal options gets the same object. Builds without BasicSR's log line (the checks run
    before BasicSR gives its logger a file)."""
    for options, dataset in _built:
        if options == dataset_opt:
            return dataset
    options = copy.deepcopy(dataset_opt)
    dataset = DATASET_REGISTRY.get(options['type'])(copy.deepcopy(options))
    _built.append((options, dataset))
    return dataset


def build_dataset(dataset_opt: Dict[str, Any]) -> Dataset:
    """BasicSR's ``build_dataset`` (the same log line) on :func:`shared_dataset`."""
    dataset = shared_dataset(dataset_opt)
    get_root_logger().info(f'Dataset [{dataset.__class__.__name__}] - {dataset_opt["name"]} is built.')
    return dataset

"""The checks of a run that need more than its options: data, metrics, checkpoints, taps and the experiment lock.

Run by the train and test ``parse_options`` (:mod:`slkd_basicsr.pipeline.parse` wraps them) after
:func:`.options.check_options`, before anything is made (:func:`check_run`); the datasets it builds are kept for
BasicSR and the model (:mod:`slkd_basicsr.data.built_datasets`). For training, the train dataset's length is checked
to give each process at least one iteration per epoch; every ``val.metrics`` entry is run
once on a generated image of the size of each validation (or test) set's first image (a metric without its model
files, with a bad option, or that cannot score images that small, e.g. NIQE on 40 px or a ``crop_border`` that
crops every pixel, fails here); rank 0 refuses a folder a live run holds (:mod:`.lock`); each ``network_*`` with
a pretrain path is checked against its file; an ``SLKDModel`` training's taps, their pairing and the networks'
channels are checked by the model's own probe on networks built on the ``meta`` device. The random states are
restored afterwards, so training starts exactly as before. A resumed run's state is checked against the options
by :func:`check_resumable` before anything is written into its folder.

:mod:`slkd_basicsr.pipeline` imports this module, so what it needs of ``slkd_basicsr.compat`` and the model is
imported when a check runs.
"""
import math
import warnings
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
import torch

from ..data import built_datasets
from . import lock
from .options import OptionsError, check_options, problems_message

METRIC_PROBE_SIZE = 192  # a side BasicSR's NIQE (96 px blocks at two scales) and every metric here accept


def iterations_per_epoch(opt: Dict[str, Any], dataset_len: int) -> int:
    """Iterations each rank runs per epoch, as BasicSR's sampler and loader produce them (``drop_last=True``).

    Every rank gets ``ceil(dataset_len * enlarge_ratio / world_size)`` samples; a batch holds
    ``batch_size_per_gpu`` samples per process (times ``num_gpu`` for DataParallel in one process).
    """
    dataset = opt['datasets']['train']
    world_size = opt.get('world_size', 1)
    per_rank = math.ceil(dataset_len * dataset.get('dataset_enlarge_ratio', 1) / world_size)
    num_gpu = opt.get('num_gpu', 0)
    batch = dataset['batch_size_per_gpu'] * (num_gpu if not opt.get('dist') and num_gpu > 1 else 1)
    return per_rank // batch


def check_iterations_per_epoch(opt: Dict[str, Any], dataset_len: int, source: str = 'the options file') -> None:
    """Raise :class:`OptionsError` when the train dataset gives no full batch per epoch on some rank.

    BasicSR drops the incomplete last batch, so with a batch larger than a rank's share of the data no step ever
    runs and an untrained network is saved with exit code 0.
    """
    if iterations_per_epoch(opt, dataset_len) >= 1:
        return
    dataset = opt['datasets']['train']
    ratio = dataset.get('dataset_enlarge_ratio', 1)
    world_size = opt.get('world_size', 1)
    per_rank = math.ceil(dataset_len * ratio / world_size)
    raise OptionsError(problems_message(source, [
        f"datasets.train.batch_size_per_gpu: {dataset['batch_size_per_gpu']} is larger than the {per_rank} training "
        f'samples each of the {world_size} process(es) gets per epoch ({dataset_len} images x dataset_enlarge_ratio '
        f'{ratio}), so not one iteration would run. Lower batch_size_per_gpu, raise dataset_enlarge_ratio, or add '
        'images.']))


def _metric_probe(height: int = METRIC_PROBE_SIZE, width: int = METRIC_PROBE_SIZE, channels: int = 3) -> np.ndarray:
    """A smooth, textured uint8 image, as ``tensor2img`` gives the metrics: H x W x C (BGR), H x W for one
    channel."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    img = np.stack([128 + 60 * np.sin(xx / 7 + c) * np.cos(yy / 11 - c) for c in range(channels)], axis=-1)
    img += np.random.default_rng(0).normal(0, 8, img.shape)
    img = np.clip(np.round(img), 0, 255).astype(np.uint8)
    return img[..., 0] if channels == 1 else img


def validation_shapes(opt: Dict[str, Any], is_train: bool) -> Dict[Tuple[int, ...], str]:
    """The shape (C, H, W) of the first image of each set the metrics will score (``datasets.val*`` in training,
    every set in ``slkd-test``), read from the set built as BasicSR will build it: its ``gt`` (the metrics' reference),
    else its ``lq`` times ``scale``; each shape once, with the first set that has it (``datasets.<key>``)."""
    shapes: Dict[Tuple[int, ...], str] = {}
    for key, dataset_opt in (opt.get('datasets') or {}).items():
        if is_train and key.split('_')[0] != 'val':
            continue
        dataset = built_datasets.shared_dataset(dataset_opt)
        if len(dataset) == 0:
            continue
        item = dataset[0]
        if 'gt' in item:
            shape = tuple(item['gt'].shape)
        else:
            scale = opt.get('scale', 1)
            shape = (item['lq'].shape[0], item['lq'].shape[1] * scale, item['lq'].shape[2] * scale)
        shapes.setdefault(shape, f'datasets.{key}')
    return shapes


def _metric_failure(metric_opt: Dict[str, Any], img: np.ndarray) -> Optional[str]:
    """Why a metric cannot score ``img`` against a copy of it, as the validation would call it (its error, or a NaN
    result: numpy's mean of nothing, e.g. a ``crop_border`` that crops every pixel); None when it can."""
    from basicsr.metrics import calculate_metric

    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # numpy's 'Mean of empty slice' and the like: the failure is reported below
        try:
            value = calculate_metric({'img': img, 'img2': img.copy()}, metric_opt)
        except Exception as err:  # noqa: BLE001  (any failure here would stop the first validation)
            return f"{type(err).__name__}: {' '.join(str(err).split()) or type(err).__name__}"
    try:
        nan = math.isnan(float(value))
    except (TypeError, ValueError):  # not one number: the validation's business
        nan = False
    return 'its value is NaN' if nan else None


def metric_problems(opt: Dict[str, Any], is_train: bool) -> List[str]:
    """Run every ``val.metrics`` entry once as the validation would, on a generated image of the size of each
    validation (or test) set's first image (:func:`validation_shapes`), or of :data:`METRIC_PROBE_SIZE` without
    such a set; a line per metric that fails or gives NaN."""
    metrics = (opt.get('val') or {}).get('metrics') or {}
    if not metrics:
        return []
    shapes = validation_shapes(opt, is_train)
    probes = [(_metric_probe(h, w, c), f'the first image of {where}, {h} x {w} pixels')
              for (c, h, w), where in shapes.items()] or [(_metric_probe(), None)]
    problems = []
    for name, metric_opt in metrics.items():
        for img, where in probes:
            reason = _metric_failure(metric_opt, img)
            if reason is None:
                continue
            on = f' on {where}' if where else ''
            crop = metric_opt.get('crop_border')
            if isinstance(crop, int) and 2 * crop >= min(img.shape[:2]):
                reason += f'; crop_border {crop} crops every pixel'
            problems.append(f"val.metrics.{name}: {metric_opt.get('type')} cannot run{on} ({reason}); fix its options "
                            '(see docs/losses_metrics.md) or remove it.')
            break
    return problems


def train_dataset_length(opt: Dict[str, Any]) -> int:
    """Length of the train dataset, built as BasicSR will build it and kept for it
    (:func:`~slkd_basicsr.data.built_datasets.shared_dataset`)."""
    return len(built_datasets.shared_dataset(opt['datasets']['train']))


def check_checkpoints_fit(opt: Dict[str, Any], networks: Optional[Iterable[str]] = None) -> None:
    """Before anything is made: each ``network_<x>`` (of ``networks``, by default all) with a
    ``path.pretrain_network_<x>`` against its file, as the package's one loader
    (:func:`slkd_basicsr.compat.checkpoints.load_network`) will load it (``param_key_<x>``, ``strict_load_<x>``;
    names and shapes only, the network built on the ``meta`` device). A network whose arch cannot be built on
    ``meta`` is left to the load itself.

    Raises:
        CheckpointError: the first file that is missing, unreadable or does not fit, as the loader would say it.
    """
    from slkd_basicsr.archs.networks import network_on_meta
    from slkd_basicsr.compat.checkpoints import check_fit, state_dict_of_file

    path = opt.get('path') or {}
    keys = [k for k in opt if k.startswith('network_')] if networks is None else networks
    for key in sorted(k for k in keys if isinstance(opt.get(k), dict)):
        which = key[len('network_'):]
        load_path = path.get(f'pretrain_network_{which}')
        if not load_path:
            continue
        net = network_on_meta(opt[key])
        if net is None:
            continue
        state_dict, _ = state_dict_of_file(net, load_path, path.get(f'param_key_{which}', 'params'), 'meta')
        check_fit(net, state_dict, load_path, path.get(f'strict_load_{which}', True))


def check_run(opt: Dict[str, Any], is_train: bool, source: str) -> None:
    """Everything the train and test ``parse_options`` check (:mod:`slkd_basicsr.pipeline.parse`), on parsed
    options; raises at the first failed stage."""
    from slkd_basicsr.models.distill_taps import check_taps
    from slkd_basicsr.random_states import rng_state, set_rng_state

    check_options(opt, is_train, source)
    built_datasets.forget()  # this run lists its folders anew
    state = rng_state()  # building the datasets and running the metrics must not move the seeded random states
    try:
        if is_train:
            check_iterations_per_epoch(opt, train_dataset_length(opt), source)
        problems = metric_problems(opt, is_train)
    finally:
        set_rng_state(state)
    if problems:
        raise OptionsError(problems_message(source, problems))
    if opt.get('rank', 0) == 0:
        lock.check_unlocked(*run_folder(opt))
    check_checkpoints_fit(opt)
    if is_train:
        check_taps(opt)


def check_resumable(opt: Dict[str, Any], resume_state: Dict[str, Any]) -> None:
    """What ``load_resume_state`` found, checked before anything is written into the resumed run's folder: the
    networks BasicSR reloads from the experiment's ``models/`` (``check_resume`` pointed their pretrain paths there)
    against the options' archs, and for ``SLKDModel`` what ``train.optim_g`` will optimise (student and SCM, built
    on the ``meta`` device) against what the state's optimiser did.

    Raises:
        CheckpointError: a network's file of the state's iteration is missing or does not fit.
        OptionsError: the param groups changed (a feature term added or removed), as ``resume_training`` would say.
    """
    from slkd_basicsr.models.slkd_model import optimizer_groups_on_meta

    ignored = opt['path'].get('ignore_resume_networks') or []
    check_checkpoints_fit(opt, [key for key in opt if key.startswith('network_') and key not in ignored])
    if opt.get('model_type') != 'SLKDModel' or len(resume_state['optimizers']) != 1:
        return  # other models, and a state of another model type, are checked when the model is built
    found = optimizer_groups_on_meta(opt)
    if found is None:
        return
    groups, lr_keys = found
    mismatch = parameter_mismatch(groups, resume_state['optimizers'][0])
    if mismatch is not None:
        raise parameters_changed(opt['path']['resume_state'], 'train.optim_g', lr_keys, mismatch)


def run_folder(opt: Dict[str, Any]) -> Tuple[str, str]:
    """The folder a run writes into and what it is locked for: ``experiments/<name>`` for training (the parsed
    options' ``is_train``), ``results/<name>`` for ``slkd-test``."""
    if opt['is_train']:
        return opt['path']['experiments_root'], lock.TRAINING
    return opt['path']['results_root'], lock.TEST


def parameter_mismatch(param_groups: Sequence[Dict[str, Any]], saved: Dict[str, Any]) -> Optional[str]:
    """How what an optimiser with ``param_groups`` (built from the options file; each group a dict with its
    ``params``, as ``optimizer.param_groups``) optimises differs from what the ``saved`` one (its ``state_dict()``)
    did: the number of param groups, of tensors in a group, or a tensor's shape (from its saved moments); None if
    alike."""
    saved_groups = saved['param_groups']
    if len(saved_groups) != len(param_groups):
        return (f'has {len(saved_groups)} param group(s) in the training state, {len(param_groups)} from '
                'the options file')
    for j, (group, saved_group) in enumerate(zip(param_groups, saved_groups)):
        if len(group['params']) != len(saved_group['params']):
            return (f"param group {j} holds {len(saved_group['params'])} tensors in the training state, "
                    f"{len(group['params'])} from the options file")
        for param, index in zip(group['params'], saved_group['params']):
            for value in saved['state'].get(index, {}).values():
                if isinstance(value, torch.Tensor) and value.dim() > 0 and value.shape != param.shape:
                    return (f'a tensor of param group {j} has shape {tuple(value.shape)} in the training state, '
                            f'{tuple(param.shape)} from the options file')
    return None


def parameters_changed(resume_path: Optional[str], prefix: str, labels: Sequence[str], mismatch: str) -> OptionsError:
    """The error for a resume whose optimiser ``prefix`` (e.g. ``train.optim_g``, its param groups' learning rates
    from the options ``labels``) would optimise other parameters than the state's (``mismatch``, from
    :func:`parameter_mismatch`)."""
    return OptionsError(
        f"resuming from {resume_path!r}: {prefix} {mismatch} "
        f"({', '.join(labels)}). The trained parameters changed since the state was saved: with SLKDModel the "
        'SCM is a param group of its own while a feature term (train.nc_opt, train.et_opt) is on, so one was '
        'added or removed (or its taps changed). The saved optimiser cannot continue other parameters: put the '
        "state's loss terms back to resume, or start a new run (a new name, or without --auto_resume and "
        "path.resume_state: BasicSR then archives this experiment's folder).")

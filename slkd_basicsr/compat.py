"""The one place that adapts ``basicsr==1.4.2`` to today's torch, torchvision, numpy and CPU-only machines.

BasicSR 1.4.2 was released for torch 1.x. Each fix below is small, documented in the README's
"Compatibility" section, and applied once by :func:`apply` when ``slkd_basicsr`` is imported:

1. ``torchvision.transforms.functional_tensor`` (removed in torchvision 0.17) is provided again as an
   alias module, because ``basicsr.data.degradations`` imports ``rgb_to_grayscale`` from it.
2. ``basicsr.train.load_resume_state`` is replaced: the state is looked up under the experiment's own
   ``training_states`` folder (BasicSR looks relative to the working directory), mapped to the model's
   device instead of ``.cuda()``, and read with ``weights_only=True`` with only the types BasicSR
   stores allow-listed. Frozen teachers (``network_teacher_*``) keep their configured checkpoints
   on resume, because they are never saved in the experiment folder.
3. ``BaseModel.load_network`` reads checkpoints with ``weights_only=True`` (no pickled code runs).
4. ``BaseModel.save_network`` / ``save_training_state`` write to a temporary file and rename it, so a
   run killed while saving never leaves a truncated checkpoint that ``--auto_resume`` would pick up.
5. ``init_dist`` uses the gloo backend when CUDA is unavailable (NCCL stays the default on GPUs) and
   binds each process to ``LOCAL_RANK``; ``model_to_device`` wraps CPU models in DDP without
   ``device_ids``.
6. ``num_gpu`` greater than 0 on a machine without CUDA falls back to the CPU with a warning instead
   of failing on the first ``.cuda()`` call.
7. A resumed run continues where the killed one stopped: the training state also records the python,
   numpy and torch random states, and on resume the train sampler skips the batches of the current
   epoch that were already consumed (BasicSR restarts the epoch) and restores those random states at
   the point they were saved. With ``num_worker_per_gpu: 0`` in one process the resumed run is then
   bit-identical to an uninterrupted one on the CPU; with loader workers, the data order is still right
   but augmentation randomness is drawn afresh.
8. BasicSR's file reading (``FileClient.get``, ``imfrombytes``, the paired path scanners) raises one
   clear error naming the file or LMDB key for missing, unpaired or corrupt data, instead of failing
   later on ``None`` (see ``slkd_basicsr.data.checked_io``).
9. An unknown ``type`` in the options names the registry and the closest registered names
   (:class:`UnknownTypeError`, still a ``KeyError``) instead of BasicSR's bare ``KeyError``. Every
   registry ``type`` is resolved right after the options are parsed, so a typo stops the run before the
   experiment folder is made and, for ``val.metrics``, not only at the first validation. The optimiser
   and scheduler, which BasicSR picks with if/else rather than registries, get the same kind of message.
"""
import collections
import difflib
import importlib
import os
import random
import sys
import tempfile
import types
from dataclasses import dataclass
from os import path as osp
from typing import Any, Callable, Dict, Iterable, Optional

import numpy as np
import torch

_APPLIED = False

# Everything BasicSR writes into a training state beyond tensors and builtins:
# MultiStepRestartLR keeps its milestones in a collections.Counter, which the default weights_only
# allow-list of some torch releases (2.4-2.x) rejects.
SAFE_STATE_GLOBALS = [collections.Counter]


# BasicSR 1.4.2 picks these with if/else in BaseModel, not through a registry: the names it accepts.
BASICSR_OPTIMIZERS = ('Adam', )
BASICSR_SCHEDULERS = ('MultiStepLR', 'MultiStepRestartLR', 'CosineAnnealingRestartLR')

# Where each BasicSR registry's names are chosen in an options file.
REGISTRY_OPTIONS = {
    'arch': 'the type of network_g / network_*',
    'dataset': 'the type of each datasets entry',
    'loss': 'the type of each train.*_opt',
    'metric': 'the type of each val.metrics entry',
    'model': 'model_type',
}


class CheckpointError(RuntimeError):
    """A checkpoint or training state could not be read safely or does not fit."""


class UnknownTypeError(KeyError):
    """An options ``type`` that names nothing registered. A ``KeyError``, as BasicSR's ``Registry.get`` raises."""

    def __str__(self) -> str:  # KeyError's own __str__ is the repr of the message, quotes and escapes included
        return str(self.args[0])


def _install_functional_tensor_alias() -> None:
    """Provide ``torchvision.transforms.functional_tensor`` for basicsr's ``degradations`` module."""
    name = 'torchvision.transforms.functional_tensor'
    try:
        importlib.import_module(name)
        return
    except ImportError:
        pass
    from torchvision.transforms import functional
    alias = types.ModuleType(name)
    alias.rgb_to_grayscale = functional.rgb_to_grayscale
    sys.modules[name] = alias


def safe_load(path: str, map_location: Any = 'cpu', what: str = 'checkpoint') -> Any:
    """Load a ``torch.save`` file without executing pickled code.

    Args:
        path: File to read.
        map_location: Where tensors go (as in ``torch.load``).
        what: Words for the error message, e.g. ``'teacher A checkpoint'``.

    Returns:
        The loaded object (dicts, lists, tensors, numbers, strings, ``collections.Counter``).

    Raises:
        CheckpointError: The file is missing, truncated, or carries objects other than tensors and plain
            containers (for example a pickled class or function), with what to do about it.
    """
    if not osp.isfile(path):
        raise CheckpointError(f'{what} not found: {path!r}. Check the path in the options file.')
    try:
        with torch.serialization.safe_globals(SAFE_STATE_GLOBALS):
            return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises UnpicklingError, RuntimeError or EOFError depending on the damage
        raise CheckpointError(
            f'Cannot read {what} {path!r} safely: {type(err).__name__}: {str(err).splitlines()[0]}\n'
            'Checkpoints are loaded with weights_only=True, so files that carry pickled code (or are truncated) '
            'are refused. If the file is yours and trusted, convert it once with:\n'
            '  python -c "import torch; sd = torch.load(\'IN.pth\', weights_only=False); '
            "torch.save({k: v for k, v in sd.items()}, 'OUT.pth')\"\n"
            'and point the options file at OUT.pth.') from err


def atomic_torch_save(obj: Any, path: str) -> None:
    """``torch.save`` to ``path`` through a temporary file in the same folder and an atomic rename."""
    folder = osp.dirname(osp.abspath(path))
    fd, tmp_path = tempfile.mkstemp(prefix=f'.{osp.basename(path)}.', suffix='.tmp', dir=folder)
    try:
        with os.fdopen(fd, 'wb') as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        if osp.exists(tmp_path):
            os.remove(tmp_path)
        raise


def resume_device(opt: Dict[str, Any]) -> torch.device:
    """The device a resume state is mapped to: the process's GPU when the run uses one, else the CPU."""
    if opt.get('num_gpu', 0) != 0 and torch.cuda.is_available():
        return torch.device('cuda', torch.cuda.current_device())
    return torch.device('cpu')


def latest_training_state(state_dir: str) -> Optional[str]:
    """Path of the newest ``<iter>.state`` in ``state_dir`` (temporary files ignored), or None."""
    if not osp.isdir(state_dir):
        return None
    iters = [int(name[:-len('.state')]) for name in os.listdir(state_dir)
             if name.endswith('.state') and name[:-len('.state')].isdigit()]
    if not iters:
        return None
    return osp.join(state_dir, f'{max(iters)}.state')


@dataclass
class ResumePosition:
    """Where a resumed run picks up: the saved epoch and iteration, and the random states at that point."""
    epoch: int
    iter: int
    rng: Optional[Dict[str, Any]]

    def __str__(self) -> str:  # BasicSR logs the whole options dict; keep the random states out of it
        return f'epoch {self.epoch}, iter {self.iter}'


def rng_state() -> Dict[str, Any]:
    """python, numpy and torch random states, in types that ``weights_only=True`` loads."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {'python': random.getstate(), 'numpy': [name, keys.tolist(), pos, has_gauss, cached],
            'torch': torch.get_rng_state()}


def set_rng_state(state: Dict[str, Any]) -> None:
    """Inverse of :func:`rng_state`."""
    version, internal, gauss = state['python']
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state['numpy']
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state['torch'])


def load_resume_state(opt: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """Replacement for ``basicsr.train.load_resume_state`` (see the module docstring, fix 2)."""
    from basicsr.utils import check_resume

    if opt['auto_resume']:
        resume_state_path = latest_training_state(opt['path']['training_states'])
        if resume_state_path is not None:
            opt['path']['resume_state'] = resume_state_path
    else:
        resume_state_path = opt['path'].get('resume_state')
    if resume_state_path is None:
        return None

    resume_state = safe_load(resume_state_path, map_location=resume_device(opt), what='resume state')
    teachers = [key for key in opt if key.startswith('network_teacher')]
    ignored = list(opt['path'].get('ignore_resume_networks') or [])
    opt['path']['ignore_resume_networks'] = ignored + [key for key in teachers if key not in ignored]
    check_resume(opt, resume_state['iter'])
    opt['resume_position'] = ResumePosition(resume_state['epoch'], resume_state['iter'], resume_state.get('rng'))
    return resume_state


def _resumable_loaders(create_train_val_dataloader: Callable) -> Callable:
    """Wrap ``basicsr.train.create_train_val_dataloader`` so that a resumed run skips consumed batches (fix 7)."""

    def wrapped(opt, logger):
        result = create_train_val_dataloader(opt, logger)
        train_loader, train_sampler = result[0], result[1]
        position = opt.get('resume_position')
        if position is not None and position.rng is not None:
            consumed = position.iter - position.epoch * len(train_loader)
            train_sampler.resume = {'skip': consumed * train_loader.batch_size, 'rng': position.rng}
            logger.info(f'Resuming inside epoch {position.epoch}: skipping its first {consumed} batches.')
        return result

    wrapped.__wrapped__ = create_train_val_dataloader
    return wrapped


def _resumable_sampler_iter(sampler_iter: Callable) -> Callable:
    """Wrap ``EnlargedSampler.__iter__``: once after resume, skip consumed samples and restore random states.

    The sampler is iterated when the first batch is fetched, after the DataLoader has drawn its base seed:
    exactly where the uninterrupted run stood when it saved the state.
    """

    def wrapped(self):
        indices = list(sampler_iter(self))
        resume = getattr(self, 'resume', None)
        if resume is not None:
            self.resume = None
            indices = indices[resume['skip']:]
            set_rng_state(resume['rng'])
        return iter(indices)

    return wrapped


def load_network(self, net: torch.nn.Module, load_path: str, strict: bool = True, param_key: str = 'params') -> None:
    """Replacement for ``BaseModel.load_network`` that never unpickles code (fix 3).

    Behaves like BasicSR's: falls back from ``params_ema`` to ``params``, strips a ``module.`` prefix,
    logs differing keys; ``param_key: ~`` takes the whole file as the state dict.
    """
    from basicsr.utils import get_root_logger

    logger = get_root_logger()
    net = self.get_bare_model(net)
    load_net = safe_load(load_path, what=f'{net.__class__.__name__} checkpoint')
    if param_key is not None:
        if param_key not in load_net and 'params' in load_net:
            logger.info(f'Loading: {param_key} does not exist, use params.')
            param_key = 'params'
        if param_key not in load_net:
            raise CheckpointError(f'{load_path!r} has no key {param_key!r} (it has {sorted(load_net)[:8]}). '
                                  'Set the matching param_key_* option in the path section.')
        load_net = load_net[param_key]
    logger.info(f'Loading {net.__class__.__name__} model from {load_path}, with param key: [{param_key}].')
    load_net = {(k[len('module.'):] if k.startswith('module.') else k): v for k, v in load_net.items()}
    self._print_different_keys_loading(net, load_net, strict)
    if strict:
        check_state_dict(net, load_net, load_path)
    net.load_state_dict(load_net, strict=strict)


def check_state_dict(net: torch.nn.Module, state_dict: Dict[str, torch.Tensor], load_path: str) -> None:
    """Raise one :class:`CheckpointError` naming the file and the first mismatched keys, if any."""
    own = net.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    shapes = [f'{k}: file {tuple(state_dict[k].shape)} vs net {tuple(v.shape)}' for k, v in own.items()
              if k in state_dict and tuple(state_dict[k].shape) != tuple(v.shape)]
    if not (missing or unexpected or shapes):
        return
    parts = [f'{title} ({len(keys)}): {", ".join(keys[:5])}{", ..." if len(keys) > 5 else ""}'
             for title, keys in (('missing in the file', missing), ('not in the network', unexpected),
                                 ('shape mismatch', shapes)) if keys]
    raise CheckpointError(f'{load_path!r} does not fit {type(net).__name__}: ' + '; '.join(parts) +
                          '. Check that the network options match the checkpoint (or set strict_load_* to false).')


def save_network(self, net, net_label: str, current_iter: int, param_key='params') -> None:
    """Replacement for ``BaseModel.save_network`` that writes atomically (fix 4); rank 0 only."""
    if self.opt.get('rank', 0) != 0:
        return
    save_filename = f"{net_label}_{'latest' if current_iter == -1 else current_iter}.pth"
    nets = net if isinstance(net, list) else [net]
    param_keys = param_key if isinstance(param_key, list) else [param_key]
    if len(nets) != len(param_keys):
        raise ValueError('The lengths of net and param_key should be the same.')
    save_dict = {}
    for net_, param_key_ in zip(nets, param_keys):
        state_dict = self.get_bare_model(net_).state_dict()
        save_dict[param_key_] = {(k[len('module.'):] if k.startswith('module.') else k): v.cpu()
                                 for k, v in state_dict.items()}
    atomic_torch_save(save_dict, osp.join(self.opt['path']['models'], save_filename))


def training_state(self, epoch: int, current_iter: int) -> Dict[str, Any]:
    """The dict BasicSR's ``save_training_state`` writes; models add entries by overriding this."""
    return {
        'epoch': epoch,
        'iter': current_iter,
        'optimizers': [o.state_dict() for o in self.optimizers],
        'schedulers': [s.state_dict() for s in self.schedulers],
        'rng': rng_state(),
    }


def save_training_state(self, epoch: int, current_iter: int) -> None:
    """Replacement for ``BaseModel.save_training_state`` that writes atomically (fix 4); rank 0 only."""
    if current_iter == -1 or self.opt.get('rank', 0) != 0:
        return
    path = osp.join(self.opt['path']['training_states'], f'{current_iter}.state')
    atomic_torch_save(self.training_state(epoch, current_iter), path)


def model_to_device(self, net: torch.nn.Module) -> torch.nn.Module:
    """Replacement for ``BaseModel.model_to_device`` that also wraps CPU models in DDP (fix 5)."""
    from torch.nn.parallel import DataParallel, DistributedDataParallel

    net = net.to(self.device)
    if self.opt['dist']:
        find_unused = self.opt.get('find_unused_parameters', False)
        device_ids = [torch.cuda.current_device()] if self.device.type == 'cuda' else None
        return DistributedDataParallel(net, device_ids=device_ids, find_unused_parameters=find_unused)
    if self.opt['num_gpu'] > 1:
        return DataParallel(net)
    return net


def init_dist(launcher: str, backend: Optional[str] = None, **kwargs) -> None:
    """Replacement for ``basicsr.utils.dist_util.init_dist``: gloo without CUDA, NCCL with it (fix 5)."""
    import torch.distributed as dist
    import torch.multiprocessing as mp

    if mp.get_start_method(allow_none=True) is None:
        mp.set_start_method('spawn')
    if backend is None:
        backend = 'nccl' if torch.cuda.is_available() else 'gloo'
    if launcher == 'pytorch':
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get('LOCAL_RANK', os.environ['RANK'])) % torch.cuda.device_count())
        dist.init_process_group(backend=backend, **kwargs)
    elif launcher == 'slurm':
        from basicsr.utils import dist_util
        dist_util._init_dist_slurm(backend, **kwargs)
    else:
        raise ValueError(f'Invalid launcher type: {launcher}')


def unknown_name_message(what: str, name: Any, known: Iterable[str], where: str, option: Optional[str] = None,
                         listed: str = 'Registered') -> str:
    """``No <what> named <name> in <where>. Did you mean: <close names>? <listed>: <all>. Check <option> ...``"""
    known = sorted(known)
    by_lower = {k.lower(): k for k in known}  # case slips ('restormer') count as close
    close = [by_lower[k] for k in difflib.get_close_matches(str(name).lower(), by_lower, n=3, cutoff=0.6)]
    message = f'No {what} named {name!r} in {where}.'
    if close:
        message += f' Did you mean: {", ".join(close)}?'
    message += f' {listed}: {", ".join(known)}.'
    if option:
        message += f' Check {option} in the options file.'
    return message


def registry_get(self, name: str, suffix: str = 'basicsr') -> Any:
    """Replacement for ``basicsr.utils.registry.Registry.get`` (fix 9): same lookup, a clearer error."""
    obj = self._obj_map.get(name)
    if obj is None:
        obj = self._obj_map.get(f'{name}_{suffix}')
        if obj is not None:
            print(f'Name {name} is not found, use name: {name}_{suffix}!')
    if obj is None:
        known = {k[:-len(suffix) - 1] if k.endswith(f'_{suffix}') else k for k in self._obj_map}
        raise UnknownTypeError(unknown_name_message(self._name, name, known, f"BasicSR's {self._name} registry",
                                                    REGISTRY_OPTIONS.get(self._name)))
    return obj


def check_option_types(opt: Dict[str, Any]) -> None:
    """Look up every registry ``type`` in parsed options; raises :class:`UnknownTypeError` for the first unknown."""
    from basicsr.utils.registry import ARCH_REGISTRY, DATASET_REGISTRY, LOSS_REGISTRY, METRIC_REGISTRY, MODEL_REGISTRY

    sections = [(ARCH_REGISTRY, value) for key, value in opt.items() if key.startswith('network_')]
    sections += [(DATASET_REGISTRY, value) for value in (opt.get('datasets') or {}).values()]
    sections += [(LOSS_REGISTRY, value) for key, value in (opt.get('train') or {}).items() if key.endswith('_opt')]
    sections += [(METRIC_REGISTRY, value) for value in ((opt.get('val') or {}).get('metrics') or {}).values()]
    names = [(MODEL_REGISTRY, opt.get('model_type'))]
    names += [(registry, section.get('type')) for registry, section in sections if isinstance(section, dict)]
    for registry, name in names:
        if name is not None:
            registry.get(name)


def _types_checked(parse_options: Callable) -> Callable:
    """Wrap ``parse_options`` so that an unknown ``type`` stops the run before anything is made (fix 9)."""

    def wrapped(root_path, is_train=True):
        opt, args = parse_options(root_path, is_train)
        check_option_types(opt)
        return opt, args

    wrapped.__wrapped__ = parse_options
    return wrapped


def _known_choice(method: Callable, what: str, choices: Iterable[str], option: str, chosen: Callable) -> Callable:
    """Wrap a ``BaseModel`` method that picks ``what`` by name with if/else: an unknown name gets suggestions.

    BasicSR raises ``NotImplementedError('optimizer X is not supperted yet.')``; this raises the same type
    with :func:`unknown_name_message`. ``chosen(self, *args, **kwargs)`` returns the name asked for.
    """

    def wrapped(self, *args, **kwargs):
        name = chosen(self, *args, **kwargs)
        if name not in choices:
            raise NotImplementedError(
                unknown_name_message(what, name, choices, "BasicSR 1.4.2's BaseModel", option, listed='Supported'))
        return method(self, *args, **kwargs)

    wrapped.__wrapped__ = method
    return wrapped


def _cpu_fallback(parse_options: Callable) -> Callable:
    """Wrap ``parse_options`` so that ``num_gpu`` > 0 without CUDA means the CPU (fix 6)."""

    def wrapped(root_path, is_train=True):
        opt, args = parse_options(root_path, is_train)
        if opt.get('num_gpu', 0) != 0 and not torch.cuda.is_available():
            print(f"num_gpu is {opt['num_gpu']} but CUDA is not available: running on the CPU.", flush=True)
            opt['num_gpu'] = 0
        return opt, args

    wrapped.__wrapped__ = parse_options
    return wrapped


def apply() -> None:
    """Apply every fix once. Safe to call repeatedly; must run before ``basicsr`` is imported elsewhere."""
    global _APPLIED
    if _APPLIED:
        return
    _install_functional_tensor_alias()

    import basicsr.test
    import basicsr.train
    from basicsr.data.data_sampler import EnlargedSampler
    from basicsr.models.base_model import BaseModel
    from basicsr.utils import dist_util, options
    from basicsr.utils.registry import Registry

    basicsr.train.load_resume_state = load_resume_state
    basicsr.train.create_train_val_dataloader = _resumable_loaders(basicsr.train.create_train_val_dataloader)
    EnlargedSampler.__iter__ = _resumable_sampler_iter(EnlargedSampler.__iter__)
    basicsr.train.parse_options = _types_checked(_cpu_fallback(basicsr.train.parse_options))
    basicsr.test.parse_options = _types_checked(_cpu_fallback(basicsr.test.parse_options))
    Registry.get = registry_get
    dist_util.init_dist = init_dist
    options.init_dist = init_dist
    BaseModel.load_network = load_network
    BaseModel.save_network = save_network
    BaseModel.training_state = training_state
    BaseModel.save_training_state = save_training_state
    BaseModel.model_to_device = model_to_device
    BaseModel.get_optimizer = _known_choice(BaseModel.get_optimizer, 'optimizer', BASICSR_OPTIMIZERS,
                                            'the type of train.optim_g', lambda self, optim_type, *_, **__: optim_type)
    BaseModel.setup_schedulers = _known_choice(BaseModel.setup_schedulers, 'scheduler', BASICSR_SCHEDULERS,
                                               'the type of train.scheduler',
                                               lambda self: self.opt['train']['scheduler'].get('type'))

    from slkd_basicsr.data import checked_io
    checked_io.install()
    _APPLIED = True

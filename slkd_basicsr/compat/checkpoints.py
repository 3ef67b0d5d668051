"""Network checkpoints that are read safely and written atomically.

BasicSR 1.4.2's ``BaseModel.load_network`` unpickles checkpoints with the installed torch's default, so a file
can run code, and a missing ``param_key`` or a mismatched network fails with a bare ``KeyError`` or a long
``load_state_dict`` trace; ``save_network`` writes straight into the final path, so a run killed while saving
leaves a truncated ``net_g_*.pth``. :func:`install` replaces both methods: loading goes through
:func:`load_network`, the package's one network loader (also for ``slkd-export``, the demo and the study), which
reads with :func:`safe_load` (``weights_only=True``, one :class:`CheckpointError` naming the file and what to do);
saving through :func:`atomic_torch_save` (temporary file, ``fsync``, rename) by rank 0 alone. A run killed
during a save leaves its temporary file; :func:`remove_stale_temporary_files` clears them on the next run.
"""
import collections
import errno
import logging
import os
import pickle
import re
import secrets
import time
from os import path as osp
from typing import Any, Dict, List, Optional, Tuple, Union

import torch

from slkd_basicsr.errors import CheckpointError

# What BasicSR writes into files beyond tensors and builtins: MultiStepRestartLR keeps its milestones in a
# collections.Counter, which the weights_only allow-list of some torch releases (2.4-2.x) rejects.
SAFE_GLOBALS = [collections.Counter]

# atomic_torch_save's temporary files, next to the final file: .<final name>.<pid>.<8 hex digits>.tmp
TEMPORARY_NAME = re.compile(r'\.(?P<final>.+)\.(?P<pid>[0-9]+)\.[0-9a-f]{8}\.tmp')
# About when this process started (the package is imported first): no save of this process is older
PROCESS_START = time.time()
# Share of a network's tensors a non-strict load must fit (name and shape): below it the file is of another network
# and loading it would leave a mostly random one
MIN_FITTED_SHARE = 0.5


def safe_load(path: str, map_location: Any = 'cpu', what: str = 'checkpoint') -> Any:
    """Load a ``torch.save`` file without executing pickled code.

    Args:
        path: File to read.
        map_location: Where tensors go (as in ``torch.load``).
        what: Words for the error message, e.g. ``'teacher A checkpoint'``.

    Returns:
        The loaded object (dicts, lists, tensors, numbers, strings, ``collections.Counter``).

    Raises:
        CheckpointError: The file is missing, empty, truncated or otherwise damaged, or carries objects other than
            tensors and plain containers (for example a pickled class or function), with what to do about it.
    """
    if not osp.isfile(path):
        raise CheckpointError(f'{what} not found: {path!r}. Check the path in the options file.')
    if osp.getsize(path) == 0:
        raise CheckpointError(f'Cannot read {what} {path!r}: the file is empty (0 bytes), e.g. from an interrupted '
                              'save or copy. Use another checkpoint.')
    try:
        with torch.serialization.safe_globals(SAFE_GLOBALS):
            return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises UnpicklingError, RuntimeError or EOFError depending on the damage
        reason = f'{type(err).__name__}: {first_line(err)}'
        if isinstance(err, pickle.UnpicklingError) and 'weights only' in str(err).lower():
            raise CheckpointError(
                f'Cannot read {what} {path!r} safely: {reason}\n'
                'Checkpoints are loaded with weights_only=True, so files that carry pickled code are refused. '
                'If the file is yours and trusted, convert it once with:\n'
                '  python -c "import torch; sd = torch.load(\'IN.pth\', weights_only=False); '
                "torch.save({k: v for k, v in sd.items()}, 'OUT.pth')\"\n"
                'and point the options file at OUT.pth.') from err
        raise CheckpointError(f'Cannot read {what} {path!r}: the file is damaged or truncated ({reason}), e.g. from '
                              'an interrupted save or copy. Use another checkpoint.') from err


def first_line(err: BaseException) -> str:
    """The first line of an exception's message ('' for an empty one)."""
    return next(iter(str(err).splitlines()), '')


def _save_failure(err: BaseException) -> str:
    """What went wrong in a failed save: the OSError behind it (torch chains it under its own error), if any."""
    seen = set()
    cause: Optional[BaseException] = err
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, OSError) and cause.errno is not None:
            return f'{os.strerror(cause.errno)} ({errno.errorcode.get(cause.errno, cause.errno)})'
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return f'{type(err).__name__}: {first_line(err)}'


def temporary_path(path: str) -> str:
    """Where :func:`atomic_torch_save` writes ``path`` first: a hidden file of this process in the same folder."""
    folder = osp.dirname(osp.abspath(path))
    return osp.join(folder, f'.{osp.basename(path)}.{os.getpid()}.{secrets.token_hex(4)}.tmp')


def _process_alive(pid: int) -> bool:
    """Whether a process ``pid`` runs on this machine (one of another user counts)."""
    if pid <= 0:  # os.kill(0, ...) would signal this process group
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporary_files(folder: str, started: float = PROCESS_START) -> List[str]:
    """Remove the temporary files that saves of :func:`atomic_torch_save` killed midway left in ``folder``.

    Only plain files named as :func:`atomic_torch_save` names them are removed, and only those of a process that
    no longer runs or last written before ``started`` (by default this process's start): a save in progress is
    never touched. Call it while holding the experiment's lock, so that no other run of it is saving.

    Returns:
        The names removed, sorted.
    """
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return []
    removed = []
    for entry in entries:
        match = TEMPORARY_NAME.fullmatch(entry.name)
        if match is None or not entry.is_file(follow_symlinks=False):
            continue
        if _process_alive(int(match['pid'])) and entry.stat(follow_symlinks=False).st_mtime >= started:
            continue
        try:
            os.remove(entry.path)
        except FileNotFoundError:  # gone meanwhile
            continue
        removed.append(entry.name)
    return sorted(removed)


def atomic_torch_save(obj: Any, path: str) -> None:
    """``torch.save`` to ``path`` through a temporary file in the same folder and an atomic rename.

    The file gets the mode the umask gives (0644 under umask 022), as a plain ``open`` would.

    Raises:
        CheckpointError: The file could not be written (disk full, permission denied, ...), naming the file and
            the reason; the temporary file is removed and an existing ``path`` is left as it was.
    """
    tmp_path = temporary_path(path)
    try:
        fd = os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, 'wb') as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
    except BaseException as err:
        if osp.lexists(tmp_path):
            os.remove(tmp_path)
        if isinstance(err, Exception):
            raise CheckpointError(f'Cannot save {path!r}: {_save_failure(err)}. No temporary file is left and an '
                                  'earlier file of that name is unchanged; free space or fix the folder\'s '
                                  'permissions, then resume with --auto_resume.') from err
        raise


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


def check_fits_enough(net: torch.nn.Module, state_dict: Dict[str, Any], load_path: str) -> None:
    """For a non-strict load: raise one :class:`CheckpointError` when the file fits (same name and shape) fewer than
    :data:`MIN_FITTED_SHARE` of the network's tensors; it comes from another arch or size, and the network would be
    tested, exported or trained from mostly random weights with nothing but warnings in the log."""
    own = net.state_dict()
    fitted = sum(1 for k, v in own.items()
                 if isinstance(state_dict.get(k), torch.Tensor) and tuple(state_dict[k].shape) == tuple(v.shape))
    if fitted >= MIN_FITTED_SHARE * len(own):
        return
    raise CheckpointError(f'{type(net).__name__} checkpoint {load_path!r} fits only {fitted} of the network\'s '
                          f'{len(own)} tensors (same name and shape): even with strict_load_* false, the other '
                          f'{len(own) - fitted} would keep their random initial values. The file was saved from '
                          'another arch or size: point the path at a checkpoint of this network, or make the network '
                          'options match the file (strict_load_* true lists every difference).')


def _strip_module_prefix(state_dict: Dict[str, Any]) -> Dict[str, Any]:
    return {(k[len('module.'):] if k.startswith('module.') else k): v for k, v in state_dict.items()}


def check_finite(net: torch.nn.Module, state_dict: Dict[str, Any], load_path: str) -> None:
    """Raise one :class:`CheckpointError` naming the file and its first parameter with NaN or inf values, if any.

    Only the network's parameters are checked: buffers may hold infinities on purpose (attention masks).
    """
    params = dict(net.named_parameters())
    bad = [k for k, v in state_dict.items() if k in params and isinstance(v, torch.Tensor)
           and v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if not bad:
        return
    values = state_dict[bad[0]]
    counts = f'{int(torch.isnan(values).sum())} NaN, {int(torch.isinf(values).sum())} inf of {values.numel()}'
    more = f' and {len(bad) - 1} more parameters' if len(bad) > 1 else ''
    raise CheckpointError(f'{type(net).__name__} checkpoint {load_path!r} has non-finite values in {bad[0]!r} '
                          f'({counts}){more}. It comes from a diverged run or is damaged; use an earlier '
                          'checkpoint of that network.')


def _state_dict_in(load_net: Any, load_path: str, param_key: Optional[str], net_name: str) -> Dict[str, Any]:
    """The state dict inside a loaded checkpoint, or a :class:`CheckpointError` saying what the file holds instead."""
    def holds(obj: Any) -> str:
        return f'a {type(obj).__name__}' + (f' of shape {tuple(obj.shape)}' if isinstance(obj, torch.Tensor) else '')

    if not isinstance(load_net, dict):
        raise CheckpointError(f'{net_name} checkpoint {load_path!r} holds {holds(load_net)}, not a dict of tensors '
                              "(BasicSR's format is {'params': state_dict}). Save net.state_dict() in that format.")
    if param_key is None:
        return load_net
    if param_key not in load_net:
        raise CheckpointError(f'{load_path!r} has no key {param_key!r} (it has {sorted(map(str, load_net))[:8]}). '
                              'Set the matching param_key_* option in the path section.')
    state_dict = load_net[param_key]
    if not isinstance(state_dict, dict):
        raise CheckpointError(f'{net_name} checkpoint {load_path!r}: {param_key!r} holds {holds(state_dict)}, not '
                              'a state dict (a dict of tensors).')
    return state_dict


def state_dict_of_file(net: torch.nn.Module, load_path: str, param_key: Optional[str],
                       map_location: Any = 'cpu') -> Tuple[Dict[str, Any], Optional[str]]:
    """The state dict ``load_path`` holds for ``net`` under ``param_key`` (falling back from a missing key to
    'params', as BasicSR does; a ``module.`` prefix stripped), and the key it came from."""
    net_name = type(net).__name__
    load_net = safe_load(load_path, map_location=map_location, what=f'{net_name} checkpoint')
    if isinstance(load_net, dict) and param_key is not None and param_key not in load_net and 'params' in load_net:
        param_key = 'params'
    return _strip_module_prefix(_state_dict_in(load_net, load_path, param_key, net_name)), param_key


def check_fit(net: torch.nn.Module, state_dict: Dict[str, Any], load_path: str, strict: bool) -> None:
    """A strict load must fit exactly (:func:`check_state_dict`), a non-strict one enough
    (:func:`check_fits_enough`)."""
    if strict:
        check_state_dict(net, state_dict, load_path)
    else:
        check_fits_enough(net, state_dict, load_path)


def _set_aside_different_keys(net: torch.nn.Module, state_dict: Dict[str, Any], strict: bool,
                              logger: Optional[logging.Logger]) -> None:
    """What BasicSR's ``_print_different_keys_loading`` does: log the keys only one side has and, in a non-strict
    load, each tensor of another shape, which is renamed ``<key>.ignore`` in ``state_dict`` so that
    ``load_state_dict`` skips it (with ``strict`` false it would fail on the shape)."""
    own = net.state_dict()
    if logger is not None and set(own) != set(state_dict):
        logger.warning('Current net - loaded net:')
        for key in sorted(set(own) - set(state_dict)):
            logger.warning(f'  {key}')
        logger.warning('Loaded net - current net:')
        for key in sorted(set(state_dict) - set(own)):
            logger.warning(f'  {key}')
    if strict:
        return
    for key in set(own) & set(state_dict):
        if own[key].size() != state_dict[key].size():
            if logger is not None:
                logger.warning(f'Size different, ignore [{key}]: crt_net: {own[key].shape}; load_net: '
                               f'{state_dict[key].shape}')
            state_dict[key + '.ignore'] = state_dict.pop(key)


def load_network(network: Union[torch.nn.Module, Dict[str, Any]], load_path: str,
                 param_key: Optional[str] = 'params', strict: bool = True,
                 logger: Optional[logging.Logger] = None) -> torch.nn.Module:
    """Load the checkpoint ``load_path`` into a network, read by :func:`safe_load`: the package's one loader.

    Behaves like BasicSR's ``BaseModel.load_network``: falls back from a missing ``param_key`` (e.g.
    ``params_ema``) to ``params``, strips a ``module.`` prefix, skips tensors of another shape when ``strict`` is
    false; ``param_key=None`` takes the whole file as the state dict. Changes nothing in BasicSR.

    Args:
        network: A bare network (not wrapped in DDP), or a ``network_*`` options section (with ``type``) that
            BasicSR's ``build_network`` builds, on the CPU.
        load_path: The checkpoint, BasicSR's format: ``{param_key: state_dict}``.
        param_key: The entry of the file that holds the state dict.
        strict: Whether the file must fit the network exactly (names and shapes); else at least half of its
            tensors (:func:`check_fits_enough`).
        logger: Where BasicSR's lines about the load go (the key used, differing keys); None: nowhere.

    Returns:
        The network with the file's weights: the one given (its mode unchanged), or the one built, in eval mode.

    Raises:
        CheckpointError: The file is missing or unreadable (:func:`safe_load`), holds no dict of tensors or not
            ``param_key``, does not fit (:func:`check_state_dict`, :func:`check_fits_enough`), or has parameters
            with NaN or inf values (:func:`check_finite`); one message naming the file and what to do.
    """
    if isinstance(network, dict):
        from basicsr.archs import build_network

        net = build_network(dict(network)).eval()
    else:
        net = network
    state_dict, used_key = state_dict_of_file(net, load_path, param_key)
    if logger is not None:
        if used_key != param_key:
            logger.info(f'Loading: {param_key} does not exist, use params.')
        logger.info(f'Loading {type(net).__name__} model from {load_path}, with param key: [{used_key}].')
    # checked before a warning per differing tensor is logged: a refused file gets its one error alone
    check_fit(net, state_dict, load_path, strict)
    _set_aside_different_keys(net, state_dict, strict, logger)
    check_finite(net, state_dict, load_path)
    net.load_state_dict(state_dict, strict=strict)
    return net


def _load_network_method(self, net: torch.nn.Module, load_path: str, strict: bool = True,
                         param_key: str = 'params') -> None:
    """``BaseModel.load_network``: :func:`load_network` into the bare ``net``, logging to BasicSR's root logger."""
    from basicsr.utils import get_root_logger

    load_network(self.get_bare_model(net), load_path, param_key, strict, get_root_logger())


def save_network(self, net, net_label: str, current_iter: int, param_key='params') -> None:
    """``BaseModel.save_network`` through :func:`atomic_torch_save`, by rank 0 alone."""
    if self.opt.get('rank', 0) != 0:
        return
    save_filename = f"{net_label}_{'latest' if current_iter == -1 else current_iter}.pth"
    nets = net if isinstance(net, list) else [net]
    param_keys = param_key if isinstance(param_key, list) else [param_key]
    if len(nets) != len(param_keys):
        raise ValueError('The lengths of net and param_key should be the same.')
    save_dict = {}
    for net_, param_key_ in zip(nets, param_keys):
        state_dict = _strip_module_prefix(self.get_bare_model(net_).state_dict())
        save_dict[param_key_] = {k: v.cpu() for k, v in state_dict.items()}
    atomic_torch_save(save_dict, osp.join(self.opt['path']['models'], save_filename))


def install() -> None:
    """Replace ``BaseModel.load_network`` and ``BaseModel.save_network``."""
    from basicsr.models.base_model import BaseModel

    BaseModel.load_network = _load_network_method
    BaseModel.save_network = save_network

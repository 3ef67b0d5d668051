"""One check of a whole options dict before anything is made: every problem in one :class:`OptionsError`.

BasicSR reads options late and loosely: a missing key fails with a ``KeyError`` after the experiment folder is
made, a typo in a key is ignored (``train.kd_op`` trains without L_KL), a bad value fails at the first step or
never (``loss_weight: -0.5``). :func:`check_options` runs on the dict ``parse_options`` returns (or on the raw
YAML dict) and reports, one line per problem, each starting with the option's dotted key:

- required sections and keys, for training and for testing (``path.pretrain_network_g`` unless
  ``path.allow_random_init: true``);
- types and ranges of the numbers BasicSR and this plugin read (sizes, iterations, frequencies, learning rates,
  loss weights, ``train.ema_decay`` below 1, ``manual_seed`` in numpy's range), and at least one loss with a
  weight above 0;
- the keywords of each ``network_*``, ``train.*_opt``, ``optim_g`` and ``scheduler`` against the registered
  class's constructor: unknown ones, and values of another type than the parameter's annotation (or, without one,
  its default) says: ``global_residual: 'false'`` (a string, so true) and ``dim: '8'`` are problems, not a silent
  truth or a late ``TypeError``;
- unknown keys where this plugin or BasicSR's ``SRModel`` reads the whole section (``distill``, ``train`` of
  ``SRModel``/``SLKDModel``, ``path``, the options of ``PairedImageDataset`` and ``SyntheticDegradationDataset``),
  and elsewhere keys so close to a known one that they are a typo (``distil``, ``val.metric``); keys of other
  plugins stay allowed;
- taps given as a string, ``name`` that would leave ``experiments/``, a validation or test set's ``name`` that
  would leave its ``visualization/`` folder or is another set's too, degradations out of range.

The registries are looked up when the check runs, so ``slkd_basicsr`` (or another plugin) must be imported by
then; an unknown ``type`` is left to ``compat.check_option_types`` (which raises ``UnknownTypeError``).
:func:`options_warnings` lists what is allowed but likely unintended (a ``name`` that puts BasicSR in debug mode).
"""
import collections.abc
import difflib
import inspect
import math
import os
import types
import typing
from typing import Any, Dict, Iterable, List, Optional, Set, Tuple

import yaml

from slkd_basicsr.errors import UserError


class OptionsError(UserError, ValueError):
    """The options file has problems; the message lists each on its own line with the option's dotted key."""


# What parse_options and the pipelines add to the options (never written by users, never flagged)
PARSED_TOP = {'is_train', 'dist', 'rank', 'world_size', 'auto_resume', 'root_path', 'resume_position',
              'epoch_shape'}
BASICSR_TOP = {'name', 'model_type', 'scale', 'num_gpu', 'manual_seed', 'datasets', 'network_g', 'network_d', 'path',
               'train', 'val', 'logger', 'dist_params', 'find_unused_parameters'}
SLKD_TOP = {'distill', 'network_teacher_a', 'network_teacher_b'}

# train keys SRModel (and BasicSR's train_pipeline) reads; those SLKDModel adds; those other BasicSR models read
SRMODEL_TRAIN = {'total_iter', 'warmup_iter', 'optim_g', 'scheduler', 'ema_decay', 'pixel_opt', 'perceptual_opt'}
SLKD_TRAIN = {'kd_opt', 'nc_opt', 'et_opt', 'lr_scm', 'use_grad_clip', 'grad_clip_norm', 'max_nonfinite_steps', 'amp'}
BASICSR_OTHER_TRAIN = {'optim_d', 'gan_opt', 'net_d_iters', 'net_d_init_iters', 'ldl_opt', 'feature_matching_opt',
                       'dcn_lr_mul', 'flow_lr_mul', 'fix_flow', 'lr_flow', 'tsa_iter', 'mixing_prob',
                       'net_d_reg_every', 'net_g_reg_every', 'path_reg_weight', 'r1_reg_weight', 'path_batch_shrink'}

DISTILL_KEYS = {'encoder_taps', 'decoder_taps', 'scm_resize_mode', 'probe_size', 'probe_channels', 'log_complexity',
                'check_teachers', 'min_teacher_b_psnr', 'log_grad_shares', 'anneal_iters', 'teacher_batch', 'every',
                'teacher_amp', 'teacher_crop'}
SCM_RESIZE_MODES = ('nearest', 'nearest-exact', 'bilinear', 'bicubic', 'area')

# path keys parse_options sets, BasicSR reads, or this plugin reads (per-network keys are added per network_*)
PATH_KEYS = {'experiments_root', 'models', 'training_states', 'log', 'visualization', 'results_root', 'resume_state',
             'ignore_resume_networks', 'allow_random_init'}
NETWORK_PATH_PREFIXES = ('pretrain_network_', 'param_key_', 'strict_load_')

LOADER_KEYS = {'batch_size_per_gpu', 'num_worker_per_gpu', 'dataset_enlarge_ratio', 'prefetch_mode', 'pin_memory',
               'persistent_workers', 'num_prefetch_queue'}
DATASET_COMMON = {'name', 'type', 'phase', 'scale'} | LOADER_KEYS
# datasets whose every option is known: their keys are checked, and train-phase keys they index are required
DATASET_KEYS = {
    'PairedImageDataset':
    DATASET_COMMON | {'dataroot_gt', 'dataroot_lq', 'meta_info_file', 'io_backend', 'filename_tmpl', 'gt_size',
                      'use_hflip', 'use_rot', 'mean', 'std', 'color'},
    'SyntheticDegradationDataset':
    DATASET_COMMON | {'degradations', 'source', 'dataroot_gt', 'io_backend', 'meta_info_file', 'skimage_images',
                      'skimage_scale', 'gt_size', 'use_hflip', 'use_rot', 'seed', 'draws', 'mean', 'std'},
}
DATASET_TRAIN_REQUIRED = {'PairedImageDataset': ('gt_size', 'use_hflip', 'use_rot', 'io_backend'),
                          'SyntheticDegradationDataset': ('gt_size', 'degradations')}

# dist_params: the process group's timeout for every launcher; backend and port BasicSR passes on with slurm only
DIST_PARAMS_KEYS = {'timeout_minutes', 'backend', 'port'}

VAL_KEYS = {'val_freq', 'save_img', 'suffix', 'metrics', 'pbar', 'center_frame_only', 'flip_seq', 'num_val_samples',
            'amp'}
LOGGER_KEYS = {'print_freq', 'save_checkpoint_freq', 'use_tb_logger', 'wandb'}

CLOSE = 0.8  # difflib ratio above which an unknown key in an open section counts as a typo of a known one
# what a constructor parameter without a usable annotation takes, by the type of its default: Python code mixes ints
# and floats freely, so an int default takes any number (EDSR's res_scale=1 is set to 0.1)
DEFAULT_HINTS = {bool: bool, int: float, float: float, str: str, list: list, tuple: list}


def suggest(name: Any, known: Iterable[str], cutoff: float = 0.6) -> List[str]:
    """Up to three names of ``known`` closest to ``name`` (case slips such as 'restormer' count as close)."""
    by_lower = {k.lower(): k for k in known}
    return [by_lower[k] for k in difflib.get_close_matches(str(name).lower(), by_lower, n=3, cutoff=cutoff)]


def unknown_key_text(prefix: str, name: str, known: Iterable[str]) -> str:
    """``unknown key. Did you mean: <prefix><close>?`` or, with nothing close, the list of known keys."""
    known = sorted(known)
    close = suggest(name, known)
    if close:
        return 'unknown key. Did you mean: ' + ', '.join(prefix + k for k in close) + '?'
    return 'unknown key. Known keys: ' + ', '.join(known) + '.'


class _Report:
    """Problems collected as ``<dotted key>: <text>`` lines."""

    def __init__(self) -> None:
        self.lines: List[str] = []

    def add(self, key: str, text: str) -> None:
        self.lines.append(f'{key}: {text}')

    def has(self, key: str) -> bool:
        """Whether a problem of ``key`` (or of an item of it, ``key[i]``) is reported already."""
        return any(line.startswith((f'{key}:', f'{key}[')) for line in self.lines)

    def section(self, opt: Dict[str, Any], key: str, dotted: str, required: bool) -> Optional[Dict[str, Any]]:
        """``opt[key]`` if it is a mapping; a problem if it is missing (when required) or not a mapping."""
        value = opt.get(key)
        if value is None:
            if required:
                self.add(dotted, 'missing; this section is required.')
            return None
        if not isinstance(value, dict):
            self.add(dotted, f'must be a mapping of options, got {value!r}.')
            return None
        return value

    def unknown(self, section: Dict[str, Any], dotted: str, known: Set[str], strict: bool = True) -> None:
        """Flag keys of ``section`` not in ``known``: all of them (``strict``), or those close to a known one."""
        for key in section:
            if key in known:
                continue
            if strict or suggest(key, known, CLOSE):
                self.add(f'{dotted}.{key}', unknown_key_text(f'{dotted}.', key, known))


# ---- values ----------------------------------------------------------------------------------------------------

def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _quoted(value: Any) -> str:
    """``repr(value)``, saying so when it is a string that YAML would read as another type without its quotes
    (``'false'``, ``'8'``): the quotes are the mistake."""
    text = repr(value)
    if isinstance(value, str):
        try:
            unquoted = yaml.safe_load(value)
        except yaml.YAMLError:
            return text
        if unquoted is not None and not isinstance(unquoted, str):
            text += ' (a quoted string)'
    return text


def _not_a_number(value: Any) -> str:
    quoted = _quoted(value)
    if isinstance(value, str) and quoted == repr(value):  # a string even without quotes
        try:
            number = float(value)
        except ValueError:
            return f'must be a number, got {quoted}.'
        # PyYAML reads 2e-4 (no dot) as a string
        return f'must be a number, got {quoted} (a string: write {number!r} or !!float {value}).'
    return f'must be a number, got {quoted}.'


def _number(report: _Report, key: str, value: Any, low: float = -math.inf, high: float = math.inf,
            low_open: bool = False, integer: bool = False, integral: bool = False) -> None:
    """Check a number: finite, in ``[low, high]`` (``(low, high]`` if ``low_open``); ``integer``: an int (bools
    excluded); ``integral``: an int or a float with an integral value (``!!float 5e3``)."""
    if not _is_number(value):
        report.add(key, _not_a_number(value))
        return
    if integer and not isinstance(value, int):
        report.add(key, f'must be a whole number, got {value!r}.')
        return
    if integral and value != int(value):
        report.add(key, f'must be a whole number, got {value!r}.')
        return
    if value < low or (low_open and value == low) or value > high:
        if high == math.inf:
            bound = f'> {_bound(low)}' if low_open else f'>= {_bound(low)}'
        else:
            bound = f'between {_bound(low)} and {_bound(high)}'
        report.add(key, f'{value!r} is out of range; it must be {bound}.')


def _bound(value: float) -> str:
    """A range's end as written in a message: whole numbers in full (a seed's 4294967295), others as %g."""
    return str(int(value)) if float(value).is_integer() else f'{value:g}'


def _bool(report: _Report, key: str, value: Any) -> None:
    if not isinstance(value, bool):
        report.add(key, f'must be true or false, got {_quoted(value)}.')


def _amp(report: _Report, key: str, value: Any) -> None:
    from slkd_basicsr.models.precision import is_amp_value

    if not is_amp_value(value):
        report.add(key, f'must be bf16, fp16, auto (bf16 where the device has it natively) or false (mixed precision '
                   f'off), got {value!r}.')


def _optional_str(report: _Report, key: str, value: Any) -> None:
    if value is not None and not isinstance(value, str):
        report.add(key, f'must be a path (a string) or ~, got {value!r}.')


def _constructor(cls: Any) -> Tuple[Any, Dict[str, Any]]:
    """The class whose ``__init__`` declares ``cls``'s keywords, and the defaults ``cls`` puts in their place.

    A student preset (``ResSL``: ``StudentPreset`` on ``Restormer``) takes ``**overrides`` and passes them on to its
    parent arch, with its ``preset`` as the defaults.
    """
    from slkd_basicsr.archs.arch_util import StudentPreset

    if isinstance(cls, type) and issubclass(cls, StudentPreset):
        return next(c for c in cls.__mro__ if not issubclass(c, StudentPreset)), cls.preset
    return cls, {}


def _type_hints(cls: Any) -> Dict[str, Any]:
    """The resolved annotations of ``cls.__init__`` ({} when they cannot be resolved, e.g. a forward reference to a
    name the module does not define)."""
    try:
        return typing.get_type_hints(cls.__init__ if isinstance(cls, type) else cls)
    except Exception:  # noqa: BLE001  (NameError, TypeError, ...: then the types stay unknown, as unannotated)
        return {}


def _signature_params(cls: Any) -> Optional[Dict[str, inspect.Parameter]]:
    """Constructor keywords of ``cls``, with resolved annotations and the defaults ``cls`` gives them; None when it
    takes ``**kwargs`` (any keyword)."""
    target, preset = _constructor(cls)
    try:
        params = inspect.signature(target).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind == p.VAR_KEYWORD for p in params):
        return None
    hints = _type_hints(target)
    return {p.name: p.replace(annotation=hints.get(p.name, p.annotation), default=preset.get(p.name, p.default))
            for p in params
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in ('self', 'optimizer', 'params')}


def _check_constructor(report: _Report, section: Dict[str, Any], dotted: str, cls: Any, what: str) -> None:
    """Keys of ``section`` must be constructor keywords of ``cls`` with values of their types
    (:func:`_check_type`, for keys without a problem yet); its required keywords must be there."""
    params = _signature_params(cls)
    if params is None:
        return
    for key, value in section.items():
        if key == 'type':
            continue
        if key not in params:
            report.add(f'{dotted}.{key}', f'{what} takes no such argument. ' +
                       unknown_key_text(f'{dotted}.', key, params).replace('unknown key. ', ''))
        elif not report.has(f'{dotted}.{key}'):
            _check_argument(report, f'{dotted}.{key}', value, params[key])
    for key, param in params.items():
        if param.default is param.empty and key not in section:
            report.add(f'{dotted}.{key}', f'missing; {what} requires it.')


def _check_argument(report: _Report, key: str, value: Any, param: inspect.Parameter) -> None:
    """Check a constructor argument against its parameter's annotation or, without one, its default's type; None
    is taken where the default is None or no annotation says otherwise."""
    annotated = param.annotation is not param.empty and not isinstance(param.annotation, str)
    hint = param.annotation if annotated else DEFAULT_HINTS.get(type(param.default))
    if hint is None or (value is None and (param.default is None or not annotated)):
        return
    _check_type(report, key, value, hint)


def _check_type(report: _Report, key: str, value: Any, hint: Any) -> None:
    """Report ``value`` unless it can be a ``hint``: bool (true or false only), int (not a float or a string), float
    (an int or a float), str, a list or tuple (its items checked against an item type, if one), ``Optional`` of
    one of them. A hint of several types, a class or ``Any`` cannot be told from the options: anything passes."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        members = [a for a in args if a is not type(None)]
        if value is None and len(members) < len(args):
            return
        if len(members) == 1:
            _check_type(report, key, value, members[0])
        return
    if hint in (list, tuple) or origin in (list, tuple, collections.abc.Sequence):
        if not isinstance(value, (list, tuple)):
            report.add(key, f'must be a list, got {_quoted(value)}.')
            return
        item = args[0] if len(args) == 1 or (len(args) == 2 and args[1] is Ellipsis) else None
        for i, entry in enumerate(value if item is not None else ()):
            _check_type(report, f'{key}[{i}]', entry, item)
    elif hint is bool:
        _bool(report, key, value)
    elif hint is int and (isinstance(value, bool) or not isinstance(value, int)):
        report.add(key, f'must be a whole number, got {_quoted(value)}.')
    elif hint is float and (isinstance(value, bool) or not isinstance(value, (int, float))):
        report.add(key, _not_a_number(value))
    elif hint is str and not isinstance(value, str):
        report.add(key, f'must be a string, got {value!r}.')


def _registered(registry: Any, name: Any) -> Any:
    """The class registered as ``name``, or None (unknown types are reported by compat.check_option_types)."""
    return registry.get(name) if isinstance(name, str) and name in registry else None


# ---- sections ----------------------------------------------------------------------------------------------------

def _check_top(report: _Report, opt: Dict[str, Any], is_train: bool) -> None:
    name = opt.get('name')
    if not isinstance(name, str) or not name.strip():
        report.add('name', f'must be a non-empty string (the experiment folder name), got {name!r}.')
    elif _leaves_folder(name):
        folder = 'experiments' if is_train else 'results'
        report.add('name', f'{name!r} names a folder outside {folder}/; use a plain name without path separators '
                   "or '..'.")
    model_type = opt.get('model_type')
    if not isinstance(model_type, str):
        report.add('model_type', f'missing or not a name, got {model_type!r}; e.g. SLKDModel or SRModel.')
    num_gpu = opt.get('num_gpu')
    if num_gpu != 'auto':
        if 'num_gpu' not in opt:
            report.add('num_gpu', "missing; set 0 (CPU), a number of GPUs, or 'auto'.")
        else:
            _number(report, 'num_gpu', num_gpu, 0, integer=True)
    if opt.get('scale') is not None:
        _number(report, 'scale', opt['scale'], 1, integer=True)
    if opt.get('manual_seed') is not None:
        # BasicSR seeds numpy with manual_seed + rank, and numpy takes seeds in [0, 2**32 - 1]
        _number(report, 'manual_seed', opt['manual_seed'], 0, 2**32 - opt.get('world_size', 1), integer=True)
    _check_dist_params(report, opt)
    known = BASICSR_TOP | SLKD_TOP
    for key in opt:
        if key in known or key in PARSED_TOP:
            continue
        if key.startswith('network_teacher'):
            report.add(key, 'SLKDModel reads only network_teacher_a and network_teacher_b. ' +
                       unknown_key_text('', key, SLKD_TOP).replace('unknown key. ', ''))
        elif not key.startswith('network_') and suggest(key, known, CLOSE):
            report.add(key, unknown_key_text('', key, known))


def _leaves_folder(name: str) -> bool:
    """Whether a folder named ``name`` would not be a plain child of its parent (path separators, ``..``, ``.``)."""
    return any(sep and sep in name for sep in ('/', '\\', os.sep, os.altsep)) or '..' in name or name == '.'


def _check_dist_params(report: _Report, opt: Dict[str, Any]) -> None:
    params = report.section(opt, 'dist_params', 'dist_params', required=False)
    if params is None:
        return
    report.unknown(params, 'dist_params', DIST_PARAMS_KEYS)
    if params.get('timeout_minutes') is not None:  # ~: torch's default
        _number(report, 'dist_params.timeout_minutes', params['timeout_minutes'], 0, low_open=True)
    if params.get('port') is not None:
        _number(report, 'dist_params.port', params['port'], 1, 65535, integer=True)
    if params.get('backend') is not None and not isinstance(params['backend'], str):
        report.add('dist_params.backend', f"must be a backend name (nccl, gloo), got {params['backend']!r}.")


def dist_params_problems(dist_params: Any) -> List[str]:
    """The problems of a ``dist_params`` section alone, for ``init_dist``, which runs before the whole check."""
    report = _Report()
    _check_dist_params(report, {'dist_params': dist_params})
    return report.lines


def _check_networks(report: _Report, opt: Dict[str, Any]) -> None:
    section = report.section(opt, 'network_g', 'network_g', required=True)
    if section is not None and 'type' not in section:
        report.add('network_g.type', 'missing; name the architecture, e.g. Restormer.')
    for key in sorted(k for k in opt if k.startswith('network_')):
        section = opt[key]
        if not isinstance(section, dict):
            if key != 'network_g':
                report.add(key, f'must be a mapping with a type, got {section!r}.')
            continue
        _check_network_arguments(report, section, key)


def _check_network_arguments(report: _Report, section: Dict[str, Any], key: str) -> None:
    """The keywords of a ``network_*`` section against its registered arch's constructor."""
    from basicsr.utils.registry import ARCH_REGISTRY

    cls = _registered(ARCH_REGISTRY, section.get('type'))
    if cls is None:
        return
    before = len(report.lines)
    _check_constructor(report, section, key, cls, section['type'])
    if len(report.lines) == before:
        _check_builds(report, section, key)


def _check_builds(report: _Report, section: Dict[str, Any], key: str) -> None:
    """Build the arch on the ``meta`` device (shapes only: no memory, no initialisation), so that the options it
    refuses itself (a ``ValueError`` of its constructor, e.g. Restormer's global residual with other input and
    output channels) are reported here and not when the run has started. Other errors are left to the real build
    (an arch may compute on values while it is built)."""
    from slkd_basicsr.archs.networks import build_on_meta

    try:
        build_on_meta(section)
    except ValueError as err:
        report.add(key, f"{section['type']} refuses these options: {' '.join(str(err).split())}")
    except Exception:  # noqa: BLE001  (not an options problem the arch names: left to the build)
        pass


def _check_datasets(report: _Report, opt: Dict[str, Any], is_train: bool) -> None:
    datasets = report.section(opt, 'datasets', 'datasets', required=True)
    if datasets is None:
        return
    phases = ('train', 'val') if is_train else ('test', 'val')
    if is_train and 'train' not in datasets:
        report.add('datasets.train', 'missing; training needs a train dataset.')
    if not is_train and not datasets:
        report.add('datasets', 'empty; list at least one test_* dataset.')
    for phase_key, dataset in datasets.items():
        dotted = f'datasets.{phase_key}'
        phase = str(phase_key).split('_')[0]
        if phase not in phases or (is_train and phase == 'train' and phase_key != 'train'):
            where = 'slkd-train reads train and val, val_1, ...' if is_train else \
                'slkd-test reads test_1, test_2, ... (and val*)'
            report.add(dotted, f'not a dataset phase here: {where}.')
        if not isinstance(dataset, dict):
            report.add(dotted, f'must be a mapping of dataset options, got {dataset!r}.')
            continue
        for key in ('name', 'type'):
            if not dataset.get(key):
                report.add(f'{dotted}.{key}', 'missing; every dataset needs a name and a type.')
        _check_dataset(report, dataset, dotted, is_train and phase_key == 'train')
    _check_image_folder_names(report, datasets, is_train)


def _check_image_folder_names(report: _Report, datasets: Dict[str, Any], is_train: bool) -> None:
    """Each validation or test set's ``name`` is the folder its images are saved in (``visualization/<name>``):
    a plain name, not that of another set."""
    where = 'experiments/<name>/visualization' if is_train else 'results/<name>/visualization'
    saved = ('val', ) if is_train else ('test', 'val')  # the phases whose images are saved (others are flagged)
    first: Dict[str, str] = {}
    for phase_key, dataset in datasets.items():
        name = dataset.get('name') if isinstance(dataset, dict) else None
        if str(phase_key).split('_')[0] not in saved or not name:
            continue
        dotted = f'datasets.{phase_key}.name'
        if not isinstance(name, str):
            report.add(dotted, f'must be a string (the folder its images are saved in under {where}/), got {name!r}.')
        elif _leaves_folder(name):
            report.add(dotted, f"{name!r} names a folder outside {where}/, where this set's images are saved; use a "
                       "plain name without path separators or '..'.")
        elif name in first:
            report.add(dotted, f'{name!r} is also the name of datasets.{first[name]}: both sets would save their '
                       f'images into {where}/{name}/, one overwriting the other. Give each set its own name.')
        else:
            first[name] = phase_key


def _check_dataset(report: _Report, dataset: Dict[str, Any], dotted: str, train: bool) -> None:
    kind = dataset.get('type')
    if kind in DATASET_KEYS:
        report.unknown(dataset, dotted, DATASET_KEYS[kind])
        for key in DATASET_TRAIN_REQUIRED[kind] if train else ():
            if key not in dataset:
                report.add(f'{dotted}.{key}', f'missing; {kind} needs it in the train phase.')
    if train:
        for key in ('batch_size_per_gpu', 'num_worker_per_gpu'):
            if key not in dataset:
                report.add(f'{dotted}.{key}', 'missing; the train dataset needs it.')
        if 'batch_size_per_gpu' in dataset:
            _number(report, f'{dotted}.batch_size_per_gpu', dataset['batch_size_per_gpu'], 1, integer=True)
        if 'num_worker_per_gpu' in dataset:
            _number(report, f'{dotted}.num_worker_per_gpu', dataset['num_worker_per_gpu'], 0, integer=True)
        if dataset.get('dataset_enlarge_ratio') is not None:
            _number(report, f'{dotted}.dataset_enlarge_ratio', dataset['dataset_enlarge_ratio'], 1)
        if dataset.get('prefetch_mode') not in (None, 'cpu', 'cuda'):
            report.add(f'{dotted}.prefetch_mode', f"must be ~, cpu or cuda, got {dataset['prefetch_mode']!r}.")
    if 'gt_size' in dataset and (train or dataset['gt_size'] is not None):
        _number(report, f'{dotted}.gt_size', dataset['gt_size'], 1, integer=True)
    for key in ('use_hflip', 'use_rot'):
        if key in dataset:
            _bool(report, f'{dotted}.{key}', dataset[key])
    if kind == 'SyntheticDegradationDataset' and 'degradations' in dataset:
        from slkd_basicsr.data.degradations import degradation_problems

        for line in degradation_problems(dataset['degradations']):
            report.lines.append(f'{dotted}.{line}')


def _check_path(report: _Report, opt: Dict[str, Any], is_train: bool) -> None:
    path = report.section(opt, 'path', 'path', required=True)
    if path is None:
        return
    networks = {'g', 'd', 'teacher_a', 'teacher_b'} | {k[len('network_'):] for k in opt if k.startswith('network_')}
    known = PATH_KEYS | {prefix + net for prefix in NETWORK_PATH_PREFIXES for net in networks}
    for key, value in path.items():
        dotted = f'path.{key}'
        if key not in known:
            # BasicSR makes a folder of every other path entry: a non-string one crashes make_exp_dirs
            if key.startswith(NETWORK_PATH_PREFIXES) or suggest(key, known, CLOSE) or not isinstance(value, str):
                report.add(dotted, unknown_key_text('path.', key, known))
        elif key.startswith('strict_load_') or key == 'allow_random_init':
            _bool(report, dotted, value)
        elif key.startswith(('pretrain_network_', 'param_key_')) or key == 'resume_state':
            _optional_str(report, dotted, value)
    if not is_train and isinstance(opt.get('network_g'), dict) and not path.get('pretrain_network_g') and \
            path.get('allow_random_init') is not True:
        report.add('path.pretrain_network_g', 'not set: the test would run a randomly initialised network. Set the '
                   'checkpoint to test, or path.allow_random_init: true to test an untrained network on purpose.')


def _model_class(opt: Dict[str, Any]) -> Any:
    from basicsr.utils.registry import MODEL_REGISTRY

    return _registered(MODEL_REGISTRY, opt.get('model_type'))


def _check_train(report: _Report, opt: Dict[str, Any], model: Any, is_slkd: bool) -> None:
    from basicsr.models.sr_model import SRModel

    train = report.section(opt, 'train', 'train', required=True)
    if train is None:
        return
    exact = model.__name__ if model is not None and model.__module__.split('.')[0] in ('basicsr', 'slkd_basicsr') \
        and model.__name__ in ('SRModel', 'SLKDModel') else None
    _check_train_keys(report, train, exact)
    if 'total_iter' not in train:
        report.add('train.total_iter', 'missing; set the number of training iterations (>= 1).')
    else:
        _number(report, 'train.total_iter', train['total_iter'], 1, integral=True)
    if train.get('warmup_iter') is not None:
        _number(report, 'train.warmup_iter', train['warmup_iter'], -1, integral=True)
    if train.get('ema_decay') is not None:
        _check_ema_decay(report, train['ema_decay'])
    _check_optimizer(report, train)
    _check_scheduler(report, train)
    if train.get('lr_scm') is not None:
        _number(report, 'train.lr_scm', train['lr_scm'], 0, low_open=True)
    if 'use_grad_clip' in train:
        _bool(report, 'train.use_grad_clip', train['use_grad_clip'])
    if train.get('grad_clip_norm') is not None:
        _number(report, 'train.grad_clip_norm', train['grad_clip_norm'], 0, low_open=True)
    if 'max_nonfinite_steps' in train:
        _number(report, 'train.max_nonfinite_steps', train['max_nonfinite_steps'], 1, integer=True)
    _amp(report, 'train.amp', train.get('amp'))
    for key in [k for k in train if k.endswith('_opt')]:
        _check_loss(report, train[key], f'train.{key}')
    _check_something_trains(report, train)
    if model is not None and issubclass(model, SRModel) and not train.get('pixel_opt') and \
            not train.get('perceptual_opt'):
        report.add('train.pixel_opt', f'missing; {model.__name__} needs pixel_opt or perceptual_opt '
                   '(e.g. {type: L1Loss, loss_weight: 1.0}).')
    if is_slkd:
        _check_teachers(report, opt, train)


def _check_ema_decay(report: _Report, decay: Any) -> None:
    if _is_number(decay) and decay >= 1:
        report.add('train.ema_decay', f'{decay!r} is out of range; it must be >= 0 and < 1: at 1 the EMA network '
                   '(which validation uses, saved as params_ema) keeps its initial weights, above 1 it drifts away '
                   'from the training. Use e.g. 0.999, or 0 for no EMA.')
    else:
        _number(report, 'train.ema_decay', decay, 0, 1)


def _check_something_trains(report: _Report, train: Dict[str, Any]) -> None:
    """Every loss of ``train`` with ``loss_weight: 0``: nothing would train (a loss without a ``loss_weight`` has its
    class's default, e.g. 1, or other weights, as PerceptualLoss: it counts as weighing)."""
    losses = {key: loss for key, loss in train.items() if key.endswith('_opt') and isinstance(loss, dict) and loss}
    weights = [loss.get('loss_weight') for loss in losses.values()]
    if losses and all(_is_number(w) and w == 0 for w in weights):
        keys = ', '.join(f'train.{key}.loss_weight' for key in losses)
        report.add('train', f'every loss weight is 0 ({keys}): nothing would train. Give at least one loss a '
                   'loss_weight > 0 (or remove the losses you do not want).')


def _check_train_keys(report: _Report, train: Dict[str, Any], exact: Optional[str]) -> None:
    """Unknown train keys: every one for SRModel / SLKDModel (nothing else reads them), else near-misses only."""
    every = SRMODEL_TRAIN | SLKD_TRAIN | BASICSR_OTHER_TRAIN
    reads = SRMODEL_TRAIN | (SLKD_TRAIN if exact == 'SLKDModel' else set())
    for key in train:
        if key in (reads if exact else every):
            continue
        if exact and key in SLKD_TRAIN:
            report.add(f'train.{key}', f'only SLKDModel reads it; with model_type {exact} it would be ignored.')
        elif exact and key in BASICSR_OTHER_TRAIN:
            report.add(f'train.{key}', f'{exact} does not read it (other BasicSR models do); it would be ignored.')
        elif exact or suggest(key, every, CLOSE):
            report.add(f'train.{key}', unknown_key_text('train.', key, reads if exact else every))


def _check_optimizer(report: _Report, train: Dict[str, Any]) -> None:
    import torch

    optim = report.section(train, 'optim_g', 'train.optim_g', required=True)
    if optim is None:
        return
    if 'type' not in optim:
        report.add('train.optim_g.type', 'missing; e.g. Adam.')
    if 'lr' not in optim:
        report.add('train.optim_g.lr', 'missing; set the learning rate (> 0).')
    else:
        _number(report, 'train.optim_g.lr', optim['lr'], 0, low_open=True)
    if optim.get('weight_decay') is not None:
        _number(report, 'train.optim_g.weight_decay', optim['weight_decay'], 0)
    betas = optim.get('betas')
    if betas is not None:
        if not isinstance(betas, (list, tuple)) or len(betas) != 2:
            report.add('train.optim_g.betas', f'must be a list of two numbers, got {betas!r}.')
        else:
            for i, beta in enumerate(betas):
                _number(report, f'train.optim_g.betas[{i}]', beta, 0, 1)
    if optim.get('type') == 'Adam':
        _check_constructor(report, optim, 'train.optim_g', torch.optim.Adam, 'Adam')


def _check_scheduler(report: _Report, train: Dict[str, Any]) -> None:
    from basicsr.models import lr_scheduler

    scheduler = report.section(train, 'scheduler', 'train.scheduler', required=True)
    if scheduler is None:
        return
    kind = scheduler.get('type')
    if kind is None:
        report.add('train.scheduler.type', 'missing; e.g. MultiStepLR or CosineAnnealingRestartLR.')
    classes = {'MultiStepLR': lr_scheduler.MultiStepRestartLR, 'MultiStepRestartLR': lr_scheduler.MultiStepRestartLR,
               'CosineAnnealingRestartLR': lr_scheduler.CosineAnnealingRestartLR}
    for key in ('milestones', 'periods', 'restarts', 'restart_weights'):
        values = scheduler.get(key)
        if values is None:
            continue
        if not isinstance(values, (list, tuple)):
            report.add(f'train.scheduler.{key}', f'must be a list, got {values!r}.')
            continue
        for i, value in enumerate(values):
            if key == 'restart_weights':
                _number(report, f'train.scheduler.{key}[{i}]', value, 0)
            else:
                _number(report, f'train.scheduler.{key}[{i}]', value, 1 if key == 'periods' else 0, integral=True)
    periods, weights = scheduler.get('periods'), scheduler.get('restart_weights', [1])
    if isinstance(periods, (list, tuple)) and isinstance(weights, (list, tuple)) and len(periods) != len(weights):
        report.add('train.scheduler.restart_weights', f'has {len(weights)} entries but periods has {len(periods)}; '
                   'give one weight per period.')
    for key, low, low_open in (('gamma', 0, True), ('eta_min', 0, False)):
        if scheduler.get(key) is not None:
            _number(report, f'train.scheduler.{key}', scheduler[key], low, low_open=low_open)
    if kind in classes:
        _check_constructor(report, scheduler, 'train.scheduler', classes[kind], kind)


def _check_loss(report: _Report, loss: Any, dotted: str) -> None:
    from basicsr.utils.registry import LOSS_REGISTRY

    if not loss:
        return  # ~ or {} switches the term off, as SRModel and SLKDModel read it
    if not isinstance(loss, dict):
        report.add(dotted, f'must be a mapping with a type (or ~ to switch the loss off), got {loss!r}.')
        return
    if 'type' not in loss:
        report.add(f'{dotted}.type', 'missing; name the loss, e.g. L1Loss.')
    for key, value in loss.items():
        if key.endswith('_weight') and not isinstance(value, (dict, list)):
            _number(report, f'{dotted}.{key}', value, 0)
    if loss.get('reduction') is not None and loss['reduction'] not in ('none', 'mean', 'sum'):
        report.add(f'{dotted}.reduction', f"must be none, mean or sum, got {loss['reduction']!r}.")
    cls = _registered(LOSS_REGISTRY, loss.get('type'))
    if cls is not None:
        _check_constructor(report, loss, dotted, cls, loss['type'])


def _check_teachers(report: _Report, opt: Dict[str, Any], train: Dict[str, Any]) -> None:
    path = opt.get('path') if isinstance(opt.get('path'), dict) else {}
    needs = {'a': [k for k in ('kd_opt', 'nc_opt') if train.get(k)], 'b': [k for k in ('et_opt', ) if train.get(k)]}
    for which, losses in needs.items():
        if not losses:
            continue
        uses = ', '.join(f'train.{k}' for k in losses)
        if not isinstance(opt.get(f'network_teacher_{which}'), dict):
            report.add(f'network_teacher_{which}', f'missing; {uses} needs teacher {which.upper()}.')
        if not path.get(f'pretrain_network_teacher_{which}'):
            report.add(f'path.pretrain_network_teacher_{which}', f'not set; {uses} needs teacher {which.upper()}\'s '
                       'trained checkpoint.')


def _check_distill(report: _Report, opt: Dict[str, Any], is_slkd: bool, model: Any) -> None:
    distill = report.section(opt, 'distill', 'distill', required=False)
    if distill is None:
        return
    if model is not None and not is_slkd:
        report.add('distill', f'only SLKDModel reads it; with model_type {opt.get("model_type")} it would be ignored.')
    report.unknown(distill, 'distill', DISTILL_KEYS)
    train = opt.get('train') if isinstance(opt.get('train'), dict) else {}
    for key, loss in (('encoder_taps', 'nc_opt'), ('decoder_taps', 'et_opt')):
        if key in distill:
            _check_taps(report, distill[key], f'distill.{key}', bool(train.get(loss)))
    if distill.get('scm_resize_mode') is not None and distill['scm_resize_mode'] not in SCM_RESIZE_MODES:
        report.add('distill.scm_resize_mode', f"must be one of {', '.join(SCM_RESIZE_MODES)}, got "
                   f"{distill['scm_resize_mode']!r}.")
    for key in ('probe_size', 'probe_channels', 'anneal_iters', 'every'):
        if distill.get(key) is not None:
            _number(report, f'distill.{key}', distill[key], 1, integer=True)
    share = distill.get('teacher_batch')
    if share is not None and not (isinstance(share, int) and not isinstance(share, bool) and share >= 1) and \
            not (isinstance(share, float) and 0 < share < 1):
        report.add('distill.teacher_batch', f'must be a number of samples (>= 1) or a share of the batch in (0, 1), '
                   f'got {share!r}.')
    crop = distill.get('teacher_crop')
    if crop is not None and not (isinstance(crop, int) and not isinstance(crop, bool) and crop >= 1) and \
            not (isinstance(crop, float) and 0 < crop < 1):
        report.add('distill.teacher_crop', f'must be a side in pixels (>= 1) or a share of the patch side in (0, 1), '
                   f'got {crop!r}.')
    _amp(report, 'distill.teacher_amp', distill.get('teacher_amp'))
    for key in ('log_complexity', 'check_teachers', 'log_grad_shares'):
        if key in distill:
            _bool(report, f'distill.{key}', distill[key])
    if 'min_teacher_b_psnr' in distill:
        _number(report, 'distill.min_teacher_b_psnr', distill['min_teacher_b_psnr'])


def _check_taps(report: _Report, taps: Any, dotted: str, used: bool) -> None:
    if isinstance(taps, str):
        report.add(dotted, f'a single name; write a list: [{taps}] (a string would be read letter by letter).')
        return
    if not isinstance(taps, (list, tuple)):
        report.add(dotted, f'must be a list of module names or [student, teacher] pairs, got {taps!r}.')
        return
    if used and not taps:
        report.add(dotted, 'empty while its loss is enabled; list at least one tap or remove the loss.')
    for i, entry in enumerate(taps):
        pair = isinstance(entry, (list, tuple)) and len(entry) == 2 and all(isinstance(n, str) for n in entry)
        if not isinstance(entry, str) and not pair:
            report.add(f'{dotted}[{i}]', f'must be a module name or a [student, teacher] pair, got {entry!r}.')


def _check_val(report: _Report, opt: Dict[str, Any], is_train: bool) -> None:
    val = report.section(opt, 'val', 'val', required=not is_train)
    if val is None:
        return
    report.unknown(val, 'val', VAL_KEYS, strict=False)
    _amp(report, 'val.amp', val.get('amp'))
    if is_train:
        if 'val_freq' not in val:
            report.add('val.val_freq', 'missing; validate every how many iterations (>= 1)?')
        else:
            _number(report, 'val.val_freq', val['val_freq'], 1, integral=True)
    if 'save_img' not in val:
        report.add('val.save_img', 'missing; set true or false.')
    else:
        _bool(report, 'val.save_img', val['save_img'])
    metrics = val.get('metrics')
    if metrics is not None and not isinstance(metrics, dict):
        report.add('val.metrics', f'must be a mapping of metric name to options, got {metrics!r}.')
    for name, metric in (metrics or {}).items() if isinstance(metrics, dict) else ():
        if not isinstance(metric, dict) or 'type' not in metric:
            report.add(f'val.metrics.{name}', f'must be a mapping with a type (e.g. calculate_psnr), got {metric!r}.')
        elif metric.get('better', 'higher') not in ('higher', 'lower'):
            report.add(f'val.metrics.{name}.better', f"must be higher or lower, got {metric['better']!r}.")


def _check_logger(report: _Report, opt: Dict[str, Any]) -> None:
    logger = report.section(opt, 'logger', 'logger', required=True)
    if logger is None:
        return
    report.unknown(logger, 'logger', LOGGER_KEYS, strict=False)
    for key in ('print_freq', 'save_checkpoint_freq'):
        if key not in logger:
            report.add(f'logger.{key}', 'missing; set a number of iterations (>= 1).')
        else:
            _number(report, f'logger.{key}', logger[key], 1, integral=True)
    if 'use_tb_logger' in logger:
        _bool(report, 'logger.use_tb_logger', logger['use_tb_logger'])


# ---- public ------------------------------------------------------------------------------------------------------

def options_problems(opt: Any, is_train: bool) -> List[str]:
    """Every problem of ``opt`` (see the module docstring), one ``<dotted key>: <text>`` line each."""
    report = _Report()
    if not isinstance(opt, dict):
        return [f'(top level): the options file must be a mapping of options, got {opt!r}.']
    _check_top(report, opt, is_train)
    _check_networks(report, opt)
    _check_datasets(report, opt, is_train)
    _check_path(report, opt, is_train)
    model = _model_class(opt)
    is_slkd = model is not None and any(cls.__name__ == 'SLKDModel' for cls in model.__mro__)
    if is_train:
        _check_train(report, opt, model, is_slkd)
        _check_logger(report, opt)
    if is_train or is_slkd:
        _check_distill(report, opt, is_slkd, model)
    _check_val(report, opt, is_train)
    return report.lines


def network_problems(section: Dict[str, Any], key: str = 'network_g') -> List[str]:
    """The problems of one ``network_*`` section's keywords (unknown ones, values of the wrong type), for
    ``slkd-export``, which builds ``network_g`` from an options file of any phase without the whole check."""
    report = _Report()
    _check_network_arguments(report, section, key)
    return report.lines


def check_options(opt: Any, is_train: bool, source: str = 'the options file') -> None:
    """Raise :class:`OptionsError` listing every problem of ``opt``, or return None when there is none.

    Args:
        opt: The options dict, as ``parse_options`` returns it (or as read from the YAML file).
        is_train: True for ``slkd-train``, False for ``slkd-test``.
        source: Where the options come from (the file path), for the first line of the message.
    """
    problems = options_problems(opt, is_train)
    if problems:
        count = f'{len(problems)} problem' + ('s' if len(problems) > 1 else '')
        raise OptionsError(f'{source} has {count} (nothing was started):\n' +
                           '\n'.join(f'  {line}' for line in problems))


def options_warnings(opt: Dict[str, Any], is_train: bool) -> List[str]:
    """What in ``opt`` is allowed but likely unintended, one line each, for the entry point to print.

    A training ``name`` containing ``debug`` puts BasicSR in debug mode (``basicsr.utils.options.parse_options``
    and ``basicsr.train``): it overrides the logging, checkpoint and validation frequencies and starts no
    tensorboard or wandb logger. ``--debug`` asks for that mode (it prefixes the name with ``debug_``); call this
    without it.
    """
    name = opt.get('name')
    if not is_train or not isinstance(name, str) or 'debug' not in name:
        return []
    val = ', val.val_freq 8' if 'val' in opt else ''
    return [f"name: {name!r} contains 'debug', so BasicSR trains in debug mode: logger.print_freq becomes 1, "
            f'logger.save_checkpoint_freq 8{val}, whatever the options file says, and no tensorboard or wandb logger '
            "is started. To train with the options file's settings, rename the experiment (a name without 'debug')."]


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
    raise OptionsError(
        f'{source} has 1 problem (nothing was started):\n'
        f"  datasets.train.batch_size_per_gpu: {dataset['batch_size_per_gpu']} is larger than the "
        f'{per_rank} training samples each of the {world_size} process(es) gets per epoch ({dataset_len} images x '
        f'dataset_enlarge_ratio {ratio}), so not one iteration would run. Lower batch_size_per_gpu, raise '
        'dataset_enlarge_ratio, or add images.')


def read_options_file(path: str) -> Dict[str, Any]:
    """Read an options YAML file as data (:mod:`slkd_basicsr.compat.safe_yaml`: ordered mappings as BasicSR's
    loader gives them, no python tags, no duplicate keys, aliases copied); bad YAML, a refused tag or a duplicate
    key becomes an :class:`OptionsError` naming the file and line, instead of a parser traceback."""
    from .compat import safe_yaml

    with open(path) as f:
        try:
            return safe_yaml.load(f)
        except yaml.YAMLError as err:
            raise OptionsError(_yaml_error_message(path, err)) from err


def _yaml_error_message(path: str, err: yaml.YAMLError) -> str:
    """``<path>, line L, column C: <problem>``: what to change, in one line."""
    from .compat import safe_yaml

    mark = getattr(err, 'problem_mark', None)
    where = f'{path}, line {mark.line + 1}, column {mark.column + 1}' if mark else path
    problem = getattr(err, 'problem', None) or str(err)
    if isinstance(err, (safe_yaml.RefusedTagError, safe_yaml.DuplicateKeyError)):
        return f'{where}: {problem}.'
    return f'{where}: not valid YAML: {problem}. Check the indentation and the quoting around that line.'

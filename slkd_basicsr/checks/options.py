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

The sections of a run's top level, datasets, path, validation and logger are checked here, ``train`` and
``distill`` in :mod:`.training`, one value or keyword in :mod:`.values`; the keys are listed in :mod:`.schema`
(SLKDModel's in :mod:`slkd_basicsr.models.slkd_options`).
The registries are looked up when the check runs, so ``slkd_basicsr`` (or another plugin) must be imported by
then; an unknown ``type`` is left to :func:`.types.check_option_types` (which raises ``UnknownTypeError``).
:func:`options_warnings` lists what is allowed but likely unintended (a ``name`` that puts BasicSR in debug mode).
What needs more than the options (the train dataset's length, the metrics, the experiment lock) is in :mod:`.run`.
"""
import argparse
import os
from typing import Any, Dict, List, Optional

import yaml

from slkd_basicsr.errors import UserError
from slkd_basicsr.models.slkd_options import SLKD_TOP
from .schema import (BASICSR_TOP, DATASET_KEYS, DATASET_TRAIN_REQUIRED, DIST_PARAMS_KEYS, LOGGER_KEYS,
                     NETWORK_PATH_PREFIXES, PARSED_TOP, PATH_KEYS, VAL_KEYS)
from .training import check_distill, check_train
from .types import UnknownTypeError
from .values import (CLOSE, Report, check_amp, check_bool, check_constructor, check_number, check_optional_str,
                     registered, suggest, unknown_key_text)


class OptionsError(UserError, ValueError):
    """The options file has problems; the message lists each on its own line with the option's dotted key."""


# ---- sections ----------------------------------------------------------------------------------------------------

def _check_top(report: Report, opt: Dict[str, Any], is_train: bool) -> None:
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
            check_number(report, 'num_gpu', num_gpu, 0, integer=True)
    if opt.get('scale') is not None:
        check_number(report, 'scale', opt['scale'], 1, integer=True)
    if opt.get('manual_seed') is not None:
        # BasicSR seeds numpy with manual_seed + rank, and numpy takes seeds in [0, 2**32 - 1]
        check_number(report, 'manual_seed', opt['manual_seed'], 0, 2**32 - opt.get('world_size', 1), integer=True)
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


def _check_dist_params(report: Report, opt: Dict[str, Any]) -> None:
    params = report.section(opt, 'dist_params', 'dist_params', required=False)
    if params is None:
        return
    report.unknown(params, 'dist_params', DIST_PARAMS_KEYS)
    if params.get('timeout_minutes') is not None:  # ~: torch's default
        check_number(report, 'dist_params.timeout_minutes', params['timeout_minutes'], 0, low_open=True)
    if params.get('port') is not None:
        check_number(report, 'dist_params.port', params['port'], 1, 65535, integer=True)
    if params.get('backend') is not None and not isinstance(params['backend'], str):
        report.add('dist_params.backend', f"must be a backend name (nccl, gloo), got {params['backend']!r}.")


def dist_params_problems(dist_params: Any) -> List[str]:
    """The problems of a ``dist_params`` section alone, for ``init_dist``, which runs before the whole check."""
    report = Report()
    _check_dist_params(report, {'dist_params': dist_params})
    return report.lines


def _check_networks(report: Report, opt: Dict[str, Any]) -> None:
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


def _check_network_arguments(report: Report, section: Dict[str, Any], key: str) -> None:
    """The keywords of a ``network_*`` section against its registered arch's constructor."""
    from basicsr.utils.registry import ARCH_REGISTRY

    cls = registered(ARCH_REGISTRY, section.get('type'))
    if cls is None:
        return
    before = len(report.lines)
    check_constructor(report, section, key, cls, section['type'])
    if len(report.lines) == before:
        _check_builds(report, section, key)


def _check_builds(report: Report, section: Dict[str, Any], key: str) -> None:
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


def _check_datasets(report: Report, opt: Dict[str, Any], is_train: bool) -> None:
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


def _check_image_folder_names(report: Report, datasets: Dict[str, Any], is_train: bool) -> None:
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


def _check_dataset(report: Report, dataset: Dict[str, Any], dotted: str, train: bool) -> None:
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
            check_number(report, f'{dotted}.batch_size_per_gpu', dataset['batch_size_per_gpu'], 1, integer=True)
        if 'num_worker_per_gpu' in dataset:
            check_number(report, f'{dotted}.num_worker_per_gpu', dataset['num_worker_per_gpu'], 0, integer=True)
        if dataset.get('dataset_enlarge_ratio') is not None:
            check_number(report, f'{dotted}.dataset_enlarge_ratio', dataset['dataset_enlarge_ratio'], 1)
        if dataset.get('prefetch_mode') not in (None, 'cpu', 'cuda'):
            report.add(f'{dotted}.prefetch_mode', f"must be ~, cpu or cuda, got {dataset['prefetch_mode']!r}.")
    if 'gt_size' in dataset and (train or dataset['gt_size'] is not None):
        check_number(report, f'{dotted}.gt_size', dataset['gt_size'], 1, integer=True)
    for key in ('use_hflip', 'use_rot'):
        if key in dataset:
            check_bool(report, f'{dotted}.{key}', dataset[key])
    if kind == 'SyntheticDegradationDataset' and 'degradations' in dataset:
        from slkd_basicsr.data.degradations import degradation_problems

        for line in degradation_problems(dataset['degradations']):
            report.lines.append(f'{dotted}.{line}')


def _check_path(report: Report, opt: Dict[str, Any], is_train: bool) -> None:
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
            check_bool(report, dotted, value)
        elif key.startswith(('pretrain_network_', 'param_key_')) or key == 'resume_state':
            check_optional_str(report, dotted, value)
    if not is_train and isinstance(opt.get('network_g'), dict) and not path.get('pretrain_network_g') and \
            path.get('allow_random_init') is not True:
        report.add('path.pretrain_network_g', 'not set: the test would run a randomly initialised network. Set the '
                   'checkpoint to test, or path.allow_random_init: true to test an untrained network on purpose.')


def _model_class(opt: Dict[str, Any]) -> Any:
    from basicsr.utils.registry import MODEL_REGISTRY

    return registered(MODEL_REGISTRY, opt.get('model_type'))


def _check_val(report: Report, opt: Dict[str, Any], is_train: bool) -> None:
    val = report.section(opt, 'val', 'val', required=not is_train)
    if val is None:
        return
    report.unknown(val, 'val', VAL_KEYS, strict=False)
    check_amp(report, 'val.amp', val.get('amp'))
    if is_train:
        if 'val_freq' not in val:
            report.add('val.val_freq', 'missing; validate every how many iterations (>= 1)?')
        else:
            check_number(report, 'val.val_freq', val['val_freq'], 1, integral=True)
    if 'save_img' not in val:
        report.add('val.save_img', 'missing; set true or false.')
    else:
        check_bool(report, 'val.save_img', val['save_img'])
    metrics = val.get('metrics')
    if metrics is not None and not isinstance(metrics, dict):
        report.add('val.metrics', f'must be a mapping of metric name to options, got {metrics!r}.')
    for name, metric in (metrics or {}).items() if isinstance(metrics, dict) else ():
        if not isinstance(metric, dict) or 'type' not in metric:
            report.add(f'val.metrics.{name}', f'must be a mapping with a type (e.g. calculate_psnr), got {metric!r}.')
        elif metric.get('better', 'higher') not in ('higher', 'lower'):
            report.add(f'val.metrics.{name}.better', f"must be higher or lower, got {metric['better']!r}.")


def _check_logger(report: Report, opt: Dict[str, Any]) -> None:
    logger = report.section(opt, 'logger', 'logger', required=True)
    if logger is None:
        return
    report.unknown(logger, 'logger', LOGGER_KEYS, strict=False)
    for key in ('print_freq', 'save_checkpoint_freq'):
        if key not in logger:
            report.add(f'logger.{key}', 'missing; set a number of iterations (>= 1).')
        else:
            check_number(report, f'logger.{key}', logger[key], 1, integral=True)
    if 'use_tb_logger' in logger:
        check_bool(report, 'logger.use_tb_logger', logger['use_tb_logger'])


# ---- public ------------------------------------------------------------------------------------------------------

def options_problems(opt: Any, is_train: bool) -> List[str]:
    """Every problem of ``opt`` (see the module docstring), one ``<dotted key>: <text>`` line each."""
    report = Report()
    if not isinstance(opt, dict):
        return [f'(top level): the options file must be a mapping of options, got {opt!r}.']
    _check_top(report, opt, is_train)
    _check_networks(report, opt)
    _check_datasets(report, opt, is_train)
    _check_path(report, opt, is_train)
    model = _model_class(opt)
    is_slkd = model is not None and any(cls.__name__ == 'SLKDModel' for cls in model.__mro__)
    if is_train:
        check_train(report, opt, model, is_slkd)
        _check_logger(report, opt)
    if is_train or is_slkd:
        check_distill(report, opt, is_slkd, model)
    _check_val(report, opt, is_train)
    return report.lines


def network_problems(section: Dict[str, Any], key: str = 'network_g') -> List[str]:
    """The problems of one ``network_*`` section's keywords (unknown ones, values of the wrong type), for
    ``slkd-export``, which builds ``network_g`` from an options file of any phase without the whole check."""
    report = Report()
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
        raise OptionsError(problems_message(source, problems))


def problems_message(source: str, problems: List[str]) -> str:
    """The message of an :class:`OptionsError`: ``<source> has N problem(s) (nothing was started):``, then each
    problem line indented."""
    count = f'{len(problems)} problem' + ('s' if len(problems) > 1 else '')
    return f'{source} has {count} (nothing was started):\n' + '\n'.join(f'  {line}' for line in problems)


def explain_parse_failure(err: BaseException, source: Optional[str], is_train: bool) -> None:
    """Raise an :class:`OptionsError` for the options file BasicSR's ``parse_options`` failed on, if it has
    problems (else return, and the original error stands). An unknown ``type`` (:class:`~.types.UnknownTypeError`)
    is listed with the other problems when there are others."""
    if not source:
        return
    raw = read_options_file(source)  # raises OptionsError naming the line for bad YAML
    problems = options_problems(raw, is_train)
    if problems:
        if isinstance(err, UnknownTypeError):
            problems.append(f'(type): {err}')
        raise OptionsError(problems_message(source, problems)) from err


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


def options_file_path() -> Optional[str]:
    """The ``-opt`` argument of this process's command line (None when there is none): the options file BasicSR's
    ``parse_options`` reads."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument('-opt')
    return parser.parse_known_args()[0].opt


def read_options_file(path: str) -> Dict[str, Any]:
    """Read an options YAML file as data (:mod:`slkd_basicsr.compat.safe_yaml`: ordered mappings as BasicSR's
    loader gives them, no python tags, no duplicate keys, aliases copied); bad YAML, a refused tag or a duplicate
    key becomes an :class:`OptionsError` naming the file and line, instead of a parser traceback."""
    from slkd_basicsr.compat import safe_yaml

    with open(path) as f:
        try:
            return safe_yaml.load(f)
        except yaml.YAMLError as err:
            raise OptionsError(_yaml_error_message(path, err)) from err


def _yaml_error_message(path: str, err: yaml.YAMLError) -> str:
    """``<path>, line L, column C: <problem>``: what to change, in one line."""
    from slkd_basicsr.compat import safe_yaml

    mark = getattr(err, 'problem_mark', None)
    where = f'{path}, line {mark.line + 1}, column {mark.column + 1}' if mark else path
    problem = getattr(err, 'problem', None) or str(err)
    if isinstance(err, (safe_yaml.RefusedTagError, safe_yaml.DuplicateKeyError)):
        return f'{where}: {problem}.'
    return f'{where}: not valid YAML: {problem}. Check the indentation and the quoting around that line.'

"""The train and test ``parse_options``: the options checked, in one sequence of steps, before anything is made.

BasicSR 1.4.2 reads options late and loosely and makes the experiment folder first: a missing section fails with
a ``KeyError`` after ``experiments/<name>`` exists, an unknown ``type`` only when its object is built (a metric at
the first validation, hours in), a batch larger than the dataset trains for zero iterations and saves an untrained
network with exit code 0, and a second run with the same ``name`` renames the live folder of the first.
:func:`install` wraps ``parse_options`` of ``basicsr.train`` and ``basicsr.test`` once, by
:func:`checked_parse_options`, whose steps run in this order:

1. BasicSR's ``parse_options`` (it reads the ``-opt`` file with the safe loader of
   :mod:`slkd_basicsr.compat.safe_yaml` and starts the process group of a launcher);
2. ``num_gpu`` settled against this machine and the launcher (:func:`.gpus.settle_num_gpu`);
3. every registry ``type`` looked up (:func:`~slkd_basicsr.checks.types.check_option_types`);

   a failure of 1 to 3 other than an :class:`~slkd_basicsr.checks.options.OptionsError` (e.g. bad YAML, no
   ``datasets``, an unknown ``type``) is explained by checking the file as read, with the same message as step 5
   (:func:`~slkd_basicsr.checks.options.explain_parse_failure`), when it has problems;
4. ``slkd-test`` gets ``val.suffix: ~`` when it is not set, as ``SRModel`` indexes it when it saves images;
5. the run checks (:func:`~slkd_basicsr.checks.run.check_run`: the options check, every problem in one
   ``OptionsError`` naming the file and each option's dotted key; then the train dataset's length, the metrics,
   the experiment lock, the checkpoints and the taps);
6. a training ``name`` that puts BasicSR in debug mode gets a warning line on stderr
   (:func:`~slkd_basicsr.checks.options.options_warnings`; not with ``--debug``, which asks for that mode);
7. ``path.allow_random_init`` (read by the check) is removed, as ``make_exp_dirs`` would make a folder of it.
"""
import sys
from typing import Any, Callable, Dict, Tuple

import yaml

from ..checks.options import OptionsError, explain_parse_failure, options_file_path, options_warnings
from ..checks.run import check_run
from ..checks.types import check_option_types
from .gpus import settle_num_gpu

# The errors of steps 1 to 3 that the options file may explain (yaml's for bad YAML)
EXPLAINED = (KeyError, TypeError, AttributeError, ValueError, IndexError, yaml.YAMLError)


def checked_parse_options(parse_options: Callable) -> Callable:
    """``parse_options`` (BasicSR's) followed by the steps of this module's docstring, in that order."""

    def wrapped(root_path: str, is_train: bool = True) -> Tuple[Dict[str, Any], Any]:
        try:
            opt, args = parse_options(root_path, is_train)
            settle_num_gpu(opt, is_train, args.opt)
            check_option_types(opt)
        except OptionsError:
            raise
        except Exception as err:  # noqa: BLE001  (KeyError, TypeError, ... or yaml's errors: explained if we can)
            if isinstance(err, EXPLAINED):
                explain_parse_failure(err, options_file_path(), is_train)
            raise
        if not is_train and isinstance(opt.get('val'), dict):
            opt['val'].setdefault('suffix', None)  # SRModel indexes val['suffix'] when slkd-test saves images
        check_run(opt, is_train, args.opt)
        if not getattr(args, 'debug', False) and opt.get('rank', 0) == 0:  # with --debug, debug mode is asked for
            for line in options_warnings(opt, is_train):
                print(f'Warning: {line}', file=sys.stderr, flush=True)
        # read by the check only; BasicSR's make_exp_dirs would make a folder of every other path entry
        opt['path'].pop('allow_random_init', None)
        return opt, args

    wrapped.__wrapped__ = parse_options
    return wrapped


def install() -> None:
    """Wrap ``parse_options`` of ``basicsr.train`` and ``basicsr.test`` (each imported it by name from
    ``basicsr.utils.options``)."""
    import basicsr.test
    import basicsr.train

    basicsr.train.parse_options = checked_parse_options(basicsr.train.parse_options)
    basicsr.test.parse_options = checked_parse_options(basicsr.test.parse_options)

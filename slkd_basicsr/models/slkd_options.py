"""The options :class:`~slkd_basicsr.models.slkd_model.SLKDModel` reads, and the checks of them it shares with the
options check (:mod:`slkd_basicsr.checks.options`), so that the keys and their rules are written once.

The keys are what the model adds to BasicSR's: top-level sections (:data:`SLKD_TOP`), ``train`` keys
(:data:`SLKD_TRAIN`) and the ``distill`` section (:data:`DISTILL_KEYS`); their meaning is in the model's docstring
and docs/options.md. :func:`taps_problems` and :func:`teacher_problems` return ``(dotted key, text)`` problems:
the options check lists them with the others, the model raises the first when it is built without that check.
"""
from typing import Any, Dict, List, Tuple

SLKD_TOP = {'distill', 'network_teacher_a', 'network_teacher_b'}
SLKD_TRAIN = {'kd_opt', 'nc_opt', 'et_opt', 'lr_scm', 'use_grad_clip', 'grad_clip_norm', 'max_nonfinite_steps', 'amp'}
DISTILL_KEYS = {'encoder_taps', 'decoder_taps', 'scm_resize_mode', 'probe_size', 'probe_channels', 'log_complexity',
                'check_teachers', 'min_teacher_b_psnr', 'log_grad_shares', 'anneal_iters', 'teacher_batch', 'every',
                'teacher_amp', 'teacher_crop'}
SCM_RESIZE_MODES = ('nearest', 'nearest-exact', 'bilinear', 'bicubic', 'area')

Problem = Tuple[str, str]  # (dotted key, what is wrong and what to do)


def taps_problems(taps: Any, dotted: str, used: bool) -> List[Problem]:
    """The problems of ``distill.<kind>_taps`` (``dotted``): a list of module names or [student, teacher] pairs,
    not empty while its loss is on (``used``)."""
    if isinstance(taps, str):
        return [(dotted, f'a single name; write a list: [{taps}] (a string would be read letter by letter).')]
    if not isinstance(taps, (list, tuple)):
        return [(dotted, f'must be a list of module names or [student, teacher] pairs, got {taps!r}.')]
    problems = []
    if used and not taps:
        problems.append((dotted, 'empty while its loss is enabled; list at least one tap or remove the loss.'))
    for i, entry in enumerate(taps):
        pair = isinstance(entry, (list, tuple)) and len(entry) == 2 and all(isinstance(n, str) for n in entry)
        if not isinstance(entry, str) and not pair:
            problems.append((f'{dotted}[{i}]', f'must be a module name or a [student, teacher] pair, got {entry!r}.'))
    return problems


def teacher_problems(opt: Dict[str, Any]) -> List[Problem]:
    """The problems of the teachers the enabled losses need: ``train.kd_opt`` and ``nc_opt`` need teacher A,
    ``et_opt`` teacher B, each its ``network_teacher_*`` section and its ``path.pretrain_network_teacher_*``."""
    train = opt.get('train') if isinstance(opt.get('train'), dict) else {}
    path = opt.get('path') if isinstance(opt.get('path'), dict) else {}
    needs = {'a': [k for k in ('kd_opt', 'nc_opt') if train.get(k)], 'b': [k for k in ('et_opt', ) if train.get(k)]}
    problems = []
    for which, losses in needs.items():
        if not losses:
            continue
        uses = ', '.join(f'train.{k}' for k in losses)
        if not isinstance(opt.get(f'network_teacher_{which}'), dict):
            problems.append((f'network_teacher_{which}', f'missing; {uses} needs teacher {which.upper()}.'))
        if not path.get(f'pretrain_network_teacher_{which}'):
            problems.append((f'path.pretrain_network_teacher_{which}', f'not set; {uses} needs teacher '
                             f'{which.upper()}\'s trained checkpoint.'))
    return problems


def raise_first(problems: List[Problem]) -> None:
    """Raise the first of ``problems`` as a ``ValueError`` (``<dotted key>: <text>``), for a model built without the
    options check, which would have listed them all; nothing when there are none."""
    if problems:
        raise ValueError('{}: {}'.format(*problems[0]))

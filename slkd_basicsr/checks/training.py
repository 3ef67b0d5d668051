"""The check of the ``train`` and ``distill`` sections: losses, optimiser, scheduler, teachers and taps.

Part of :func:`.options.options_problems`, for training (and ``distill`` whenever the model is ``SLKDModel``). The
keys SLKDModel reads, and the checks of its taps and teachers it runs itself, are the model's
(:mod:`slkd_basicsr.models.slkd_options`).
"""
from typing import Any, Dict, Optional

from slkd_basicsr.models.slkd_options import DISTILL_KEYS, SCM_RESIZE_MODES, SLKD_TRAIN, taps_problems, teacher_problems
from .schema import BASICSR_OTHER_TRAIN, SRMODEL_TRAIN
from .values import (CLOSE, Report, check_amp, check_bool, check_constructor, check_number, is_number, registered,
                     suggest, unknown_key_text)


def check_train(report: Report, opt: Dict[str, Any], model: Any, is_slkd: bool) -> None:
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
        check_number(report, 'train.total_iter', train['total_iter'], 1, integral=True)
    if train.get('warmup_iter') is not None:
        check_number(report, 'train.warmup_iter', train['warmup_iter'], -1, integral=True)
    if train.get('ema_decay') is not None:
        _check_ema_decay(report, train['ema_decay'])
    _check_optimizer(report, train)
    _check_scheduler(report, train)
    if train.get('lr_scm') is not None:
        check_number(report, 'train.lr_scm', train['lr_scm'], 0, low_open=True)
    if 'use_grad_clip' in train:
        check_bool(report, 'train.use_grad_clip', train['use_grad_clip'])
    if train.get('grad_clip_norm') is not None:
        check_number(report, 'train.grad_clip_norm', train['grad_clip_norm'], 0, low_open=True)
    if 'max_nonfinite_steps' in train:
        check_number(report, 'train.max_nonfinite_steps', train['max_nonfinite_steps'], 1, integer=True)
    check_amp(report, 'train.amp', train.get('amp'))
    for key in [k for k in train if k.endswith('_opt')]:
        _check_loss(report, train[key], f'train.{key}')
    _check_something_trains(report, train)
    if model is not None and issubclass(model, SRModel) and not train.get('pixel_opt') and \
            not train.get('perceptual_opt'):
        report.add('train.pixel_opt', f'missing; {model.__name__} needs pixel_opt or perceptual_opt '
                   '(e.g. {type: L1Loss, loss_weight: 1.0}).')
    if is_slkd:
        report.add_all(teacher_problems(opt))


def _check_ema_decay(report: Report, decay: Any) -> None:
    if is_number(decay) and decay >= 1:
        report.add('train.ema_decay', f'{decay!r} is out of range; it must be >= 0 and < 1: at 1 the EMA network '
                   '(which validation uses, saved as params_ema) keeps its initial weights, above 1 it drifts away '
                   'from the training. Use e.g. 0.999, or 0 for no EMA.')
    else:
        check_number(report, 'train.ema_decay', decay, 0, 1)


def _check_something_trains(report: Report, train: Dict[str, Any]) -> None:
    """Every loss of ``train`` with ``loss_weight: 0``: nothing would train (a loss without a ``loss_weight`` has its
    class's default, e.g. 1, or other weights, as PerceptualLoss: it counts as weighing)."""
    losses = {key: loss for key, loss in train.items() if key.endswith('_opt') and isinstance(loss, dict) and loss}
    weights = [loss.get('loss_weight') for loss in losses.values()]
    if losses and all(is_number(w) and w == 0 for w in weights):
        keys = ', '.join(f'train.{key}.loss_weight' for key in losses)
        report.add('train', f'every loss weight is 0 ({keys}): nothing would train. Give at least one loss a '
                   'loss_weight > 0 (or remove the losses you do not want).')


def _check_train_keys(report: Report, train: Dict[str, Any], exact: Optional[str]) -> None:
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


def _check_optimizer(report: Report, train: Dict[str, Any]) -> None:
    import torch

    optim = report.section(train, 'optim_g', 'train.optim_g', required=True)
    if optim is None:
        return
    if 'type' not in optim:
        report.add('train.optim_g.type', 'missing; e.g. Adam.')
    if 'lr' not in optim:
        report.add('train.optim_g.lr', 'missing; set the learning rate (> 0).')
    else:
        check_number(report, 'train.optim_g.lr', optim['lr'], 0, low_open=True)
    if optim.get('weight_decay') is not None:
        check_number(report, 'train.optim_g.weight_decay', optim['weight_decay'], 0)
    betas = optim.get('betas')
    if betas is not None:
        if not isinstance(betas, (list, tuple)) or len(betas) != 2:
            report.add('train.optim_g.betas', f'must be a list of two numbers, got {betas!r}.')
        else:
            for i, beta in enumerate(betas):
                check_number(report, f'train.optim_g.betas[{i}]', beta, 0, 1)
    if optim.get('type') == 'Adam':
        check_constructor(report, optim, 'train.optim_g', torch.optim.Adam, 'Adam')


def _check_scheduler(report: Report, train: Dict[str, Any]) -> None:
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
                check_number(report, f'train.scheduler.{key}[{i}]', value, 0)
            else:
                check_number(report, f'train.scheduler.{key}[{i}]', value, 1 if key == 'periods' else 0, integral=True)
    periods, weights = scheduler.get('periods'), scheduler.get('restart_weights', [1])
    if isinstance(periods, (list, tuple)) and isinstance(weights, (list, tuple)) and len(periods) != len(weights):
        report.add('train.scheduler.restart_weights', f'has {len(weights)} entries but periods has {len(periods)}; '
                   'give one weight per period.')
    for key, low, low_open in (('gamma', 0, True), ('eta_min', 0, False)):
        if scheduler.get(key) is not None:
            check_number(report, f'train.scheduler.{key}', scheduler[key], low, low_open=low_open)
    if kind in classes:
        check_constructor(report, scheduler, 'train.scheduler', classes[kind], kind)


def _check_loss(report: Report, loss: Any, dotted: str) -> None:
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
            check_number(report, f'{dotted}.{key}', value, 0)
    if loss.get('reduction') is not None and loss['reduction'] not in ('none', 'mean', 'sum'):
        report.add(f'{dotted}.reduction', f"must be none, mean or sum, got {loss['reduction']!r}.")
    cls = registered(LOSS_REGISTRY, loss.get('type'))
    if cls is not None:
        check_constructor(report, loss, dotted, cls, loss['type'])


def check_distill(report: Report, opt: Dict[str, Any], is_slkd: bool, model: Any) -> None:
    distill = report.section(opt, 'distill', 'distill', required=False)
    if distill is None:
        return
    if model is not None and not is_slkd:
        report.add('distill', f'only SLKDModel reads it; with model_type {opt.get("model_type")} it would be ignored.')
    report.unknown(distill, 'distill', DISTILL_KEYS)
    train = opt.get('train') if isinstance(opt.get('train'), dict) else {}
    for key, loss in (('encoder_taps', 'nc_opt'), ('decoder_taps', 'et_opt')):
        if key in distill:
            report.add_all(taps_problems(distill[key], f'distill.{key}', bool(train.get(loss))))
    if distill.get('scm_resize_mode') is not None and distill['scm_resize_mode'] not in SCM_RESIZE_MODES:
        report.add('distill.scm_resize_mode', f"must be one of {', '.join(SCM_RESIZE_MODES)}, got "
                   f"{distill['scm_resize_mode']!r}.")
    for key in ('probe_size', 'probe_channels', 'anneal_iters', 'every'):
        if distill.get(key) is not None:
            check_number(report, f'distill.{key}', distill[key], 1, integer=True)
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
    check_amp(report, 'distill.teacher_amp', distill.get('teacher_amp'))
    for key in ('log_complexity', 'check_teachers', 'log_grad_shares'):
        if key in distill:
            check_bool(report, f'distill.{key}', distill[key])
    if 'min_teacher_b_psnr' in distill:
        check_number(report, 'distill.min_teacher_b_psnr', distill['min_teacher_b_psnr'])

"""The teachers measured once at start-up: Teacher A's validation scores, and the checks that stop a useless teacher.

A teacher that cannot do its job pulls the student toward a wrong target while every loss term still logs
plausible numbers (the demo's first Teacher B read 12.4 dB on clean->clean), so ``SLKDModel`` measures the teachers
before the first step (:func:`measure_on_set`), in one pass over each validation set: Teacher A's scores by the
validation metrics (so the student's gap is visible in the log) and, on the first set, the PSNRs of the check,
which stops with :class:`TeacherCheckError` when a teacher is useless (:func:`problems`). Without a validation set
of clean images of the input's size the check runs on the first training batch (:func:`measure_teachers`).
"""
from typing import Any, Callable, Dict, List, Optional

import torch
from basicsr.metrics import calculate_metric
from basicsr.metrics.psnr_ssim import calculate_psnr_pt
from basicsr.utils import tensor2img
from torch import nn
from torch.utils.data import Dataset

from slkd_basicsr.errors import UserError

CHECK_IMAGES = 4  # Teacher B's check: at most this many images of the first validation set, spread over it
DEFAULT_MIN_TEACHER_B_PSNR = 30.0

# runs a teacher on B x C x H x W images in [0, 1] (as it runs in training) and gives its output as float32
Runner = Callable[[nn.Module, torch.Tensor], torch.Tensor]


class TeacherCheckError(UserError, ValueError):
    """A teacher failed its check before training: Teacher A no better than its input, or Teacher B below
    ``distill.min_teacher_b_psnr``."""


def val_dataset_options(opt: Dict[str, Any]) -> List[Dict[str, Any]]:
    """The options of each validation set (BasicSR's ``datasets.val*`` keys), as BasicSR builds it."""
    return [{**dataset_opt, 'phase': 'val', 'scale': opt.get('scale', 1)}
            for phase, dataset_opt in (opt.get('datasets') or {}).items()
            if phase.split('_')[0] == 'val' and isinstance(dataset_opt, dict)]


def _psnr(img: torch.Tensor, ref: torch.Tensor) -> float:
    return calculate_psnr_pt(img.clamp(0, 1).float(), ref.float(), crop_border=0).mean().item()


@torch.no_grad()
def measure_on_set(dataset: Dataset, teacher_a: Optional[nn.Module], teacher_b: Optional[nn.Module],
                   metrics: Optional[Dict[str, Dict[str, Any]]], run: Runner, check: bool) -> Dict[str, Any]:
    """One pass of the teachers over a validation set.

    Args:
        dataset: items with ``lq`` (C x H x W in [0, 1]) and optionally ``gt``, as BasicSR's validation sets.
        teacher_a, teacher_b: the teachers, or None.
        metrics: ``val.metrics`` (BasicSR's metric options by name); Teacher A's outputs are scored by them as the
            validation scores the student's, on every image.
        run: how a teacher runs (device, autocast).
        check: also measure what :func:`problems` judges; only on a set whose ``gt`` has the ``lq``'s shape.

    Returns:
        ``metrics`` (Teacher A's mean of each metric; only with Teacher A and metrics); with ``check`` on such a
        set, the mean PSNRs (dB, images clamped to [0, 1]) ``input`` (lq vs gt) and ``teacher_a`` (A(lq) vs gt)
        over every image, ``teacher_b`` (B(gt) vs gt) over up to ``CHECK_IMAGES`` images spread over the set,
        with ``images_a`` and ``images_b`` their counts.
    """
    if len(dataset) == 0:
        return {}
    metrics = metrics if teacher_a is not None else None
    first = dataset[0]
    check = check and 'gt' in first and first['gt'].shape == first['lq'].shape
    check_a = check and teacher_a is not None
    count_b = min(CHECK_IMAGES, len(dataset)) if check and teacher_b is not None else 0
    spread = {i * len(dataset) // count_b for i in range(count_b)}
    run_a = bool(metrics) or check_a  # on every image
    indices = range(len(dataset)) if run_a else sorted(spread)
    totals: Dict[str, float] = dict.fromkeys(metrics or {}, 0.0)
    psnr = dict.fromkeys(('input', 'teacher_a', 'teacher_b'), 0.0)
    for index in indices:
        item = first if index == 0 else dataset[index]
        lq, gt = item['lq'][None], item['gt'][None] if 'gt' in item else None
        restored = run(teacher_a, lq) if run_a else None
        if metrics:
            metric_data = {'img': tensor2img([restored.cpu()])}
            if gt is not None:
                metric_data['img2'] = tensor2img([gt])
            for name, metric_opt in metrics.items():
                totals[name] += calculate_metric(metric_data, metric_opt)
        if check_a:
            psnr['input'] += _psnr(lq, gt)
            psnr['teacher_a'] += _psnr(restored.cpu(), gt)
        if index in spread:
            psnr['teacher_b'] += _psnr(run(teacher_b, gt).cpu(), gt)
    scores: Dict[str, Any] = {}
    if metrics:
        scores['metrics'] = {name: total / len(indices) for name, total in totals.items()}
    if check_a:
        scores.update(input=psnr['input'] / len(indices), teacher_a=psnr['teacher_a'] / len(indices),
                      images_a=len(indices))
    if count_b:
        scores.update(teacher_b=psnr['teacher_b'] / count_b, images_b=count_b)
    return scores


@torch.no_grad()
def measure_teachers(teacher_a: Optional[nn.Module], teacher_b: Optional[nn.Module], lq: torch.Tensor,
                     gt: torch.Tensor, run: Runner) -> Dict[str, float]:
    """The check's PSNRs on one batch (B x C x H x W in [0, 1]): ``input``, ``teacher_a``, ``teacher_b`` as in
    :func:`measure_on_set`, on every image of the batch, each teacher run by ``run``; only for the teachers
    given."""
    scores = {}
    if teacher_a is not None:
        restored = run(teacher_a, lq)
        scores.update(input=_psnr(lq, gt), teacher_a=_psnr(restored, gt.to(restored.device)), images_a=len(lq))
    if teacher_b is not None:
        reconstructed = run(teacher_b, gt)
        scores.update(teacher_b=_psnr(reconstructed, gt.to(reconstructed.device)), images_b=len(gt))
    return scores


def report_lines(scores: Dict[str, Any], source: str) -> List[str]:
    """One log line per teacher the check measured; ``source`` names the set or batch."""
    lines = []
    if 'teacher_a' in scores:
        lines.append(f"Teacher check: teacher A (degraded -> clean) PSNR {scores['teacher_a']:.2f} dB vs the degraded "
                     f"input's own {scores['input']:.2f} dB, on {scores['images_a']} images of {source}.")
    if 'teacher_b' in scores:
        lines.append(f"Teacher check: teacher B (clean -> clean) PSNR {scores['teacher_b']:.2f} dB, on "
                     f"{scores['images_b']} images of {source}.")
    return lines


def problems(scores: Dict[str, Any], min_teacher_b_psnr: float) -> List[str]:
    """What is wrong with the teachers, one line each naming the teacher, the measurement and the fix."""
    found = []
    if 'teacher_a' in scores and scores['teacher_a'] <= scores['input']:
        found.append(f"teacher A (path.pretrain_network_teacher_a) restores to {scores['teacher_a']:.2f} dB PSNR, no "
                     f"better than its degraded input ({scores['input']:.2f} dB): it is untrained or trained for "
                     'another degradation; give a checkpoint trained on this task.')
    if 'teacher_b' in scores and scores['teacher_b'] < min_teacher_b_psnr:
        found.append('teacher B (path.pretrain_network_teacher_b) reconstructs clean images at '
                     f"{scores['teacher_b']:.2f} dB PSNR, below distill.min_teacher_b_psnr = "
                     f'{min_teacher_b_psnr:g} dB: train it on clean->clean pairs until it reconstructs '
                     '(docs/options.md, "Teacher B"), or lower the threshold.')
    return found

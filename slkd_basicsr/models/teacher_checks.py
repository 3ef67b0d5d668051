"""Teacher checks before distillation: a Teacher A that restores and a Teacher B that reconstructs.

A teacher that cannot do its job pulls the student toward a wrong target while every loss term still logs
plausible numbers (the demo's first Teacher B read 12.4 dB on clean->clean), so ``SLKDModel`` measures each
teacher once before the first step and stops with :class:`TeacherCheckError` when one is useless.
"""
from typing import Any, Dict, List, Optional, Tuple

import torch
from basicsr.data import build_dataset
from basicsr.metrics.psnr_ssim import calculate_psnr_pt
from torch import nn

from slkd_basicsr.errors import UserError

CHECK_IMAGES = 4  # at most this many validation images, spread over the set
CHECK_CROP = 128  # centre crops of at most this size (a multiple of 8, as the archs' downsampling needs)
DEFAULT_MIN_TEACHER_B_PSNR = 30.0


class TeacherCheckError(UserError, ValueError):
    """A teacher failed its check before training: Teacher A no better than its input, or Teacher B below
    ``distill.min_teacher_b_psnr``."""


def first_val_dataset_options(opt: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """The options of the first validation set (BasicSR's ``datasets.val*`` keys), or None."""
    for phase, dataset_opt in (opt.get('datasets') or {}).items():
        if phase.split('_')[0] == 'val' and isinstance(dataset_opt, dict):
            return {**dataset_opt, 'phase': 'val', 'scale': opt.get('scale', 1)}
    return None


def _centre_crop(img: torch.Tensor, size: int) -> torch.Tensor:
    top, left = (img.shape[-2] - size) // 2, (img.shape[-1] - size) // 2
    return img[..., top:top + size, left:left + size]


def check_batch(opt: Dict[str, Any]) -> Optional[Tuple[torch.Tensor, torch.Tensor, str]]:
    """(lq, gt, source) from up to ``CHECK_IMAGES`` images of the first validation set, or None without one.

    lq and gt: N x C x S x S in [0, 1], equal centre crops (S at most ``CHECK_CROP``, a multiple of 8).
    """
    dataset_opt = first_val_dataset_options(opt)
    if dataset_opt is None:
        return None
    dataset = build_dataset(dataset_opt)
    count = min(CHECK_IMAGES, len(dataset))
    items = [dataset[i * len(dataset) // count] for i in range(count)]
    if any('gt' not in item or item['gt'].shape != item['lq'].shape for item in items):
        return None  # no paired clean images of the input's size: fall back to a training batch
    size = min([CHECK_CROP] + [min(item['gt'].shape[-2:]) for item in items]) // 8 * 8
    lq = torch.stack([_centre_crop(item['lq'], size) for item in items])
    gt = torch.stack([_centre_crop(item['gt'], size) for item in items])
    return lq, gt, f"{count} images of {dataset_opt.get('name', 'the validation set')}"


def _psnr(img: torch.Tensor, ref: torch.Tensor) -> float:
    return calculate_psnr_pt(img.clamp(0, 1).float(), ref.float(), crop_border=0).mean().item()


@torch.no_grad()
def measure_teachers(teacher_a: Optional[nn.Module], teacher_b: Optional[nn.Module], lq: torch.Tensor,
                     gt: torch.Tensor) -> Dict[str, float]:
    """PSNRs (dB, images clamped to [0, 1]): ``input`` (lq vs gt), ``teacher_a`` (A(lq) vs gt), ``teacher_b``
    (B(gt) vs gt); only for the teachers given."""
    scores = {}
    if teacher_a is not None:
        scores['input'] = _psnr(lq, gt)
        scores['teacher_a'] = _psnr(teacher_a(lq), gt)
    if teacher_b is not None:
        scores['teacher_b'] = _psnr(teacher_b(gt), gt)
    return scores


def report_lines(scores: Dict[str, float], source: str) -> List[str]:
    """One log line per measured teacher."""
    lines = []
    if 'teacher_a' in scores:
        lines.append(f"Teacher check: teacher A (degraded -> clean) PSNR {scores['teacher_a']:.2f} dB vs the degraded "
                     f"input's own {scores['input']:.2f} dB, on {source}.")
    if 'teacher_b' in scores:
        lines.append(f"Teacher check: teacher B (clean -> clean) PSNR {scores['teacher_b']:.2f} dB, on {source}.")
    return lines


def problems(scores: Dict[str, float], min_teacher_b_psnr: float) -> List[str]:
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

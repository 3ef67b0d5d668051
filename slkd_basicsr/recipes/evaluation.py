"""Scoring trained networks on the demo's held-out photos."""
from typing import Any, Dict, List

import torch
from basicsr.data import build_dataset
from basicsr.metrics import calculate_metric
from basicsr.utils import tensor2img

from .demo_recipe import METRICS, dataset_options


@torch.no_grad()
def restoration_scores(net: torch.nn.Module, degradations: List[Dict[str, Any]],
                       metrics: Dict[str, Dict[str, Any]] = METRICS) -> Dict[str, float]:
    """Mean of each metric over the held-out photos, each degraded the same way on every call.

    ``net`` maps a 1 x 3 x H x W RGB batch in [0, 1] to its restoration (same shape and range).
    """
    dataset = build_dataset({**dataset_options('val', degradations), 'phase': 'val'})
    scores = {metric: 0.0 for metric in metrics}
    for item in dataset:
        restored = tensor2img([net(item['lq'][None])])
        for metric, opt in metrics.items():
            opt = {k: v for k, v in opt.items() if k != 'better'}
            scores[metric] += calculate_metric({'img': restored, 'img2': tensor2img([item['gt']])}, opt)
    return {metric: total / len(dataset) for metric, total in scores.items()}

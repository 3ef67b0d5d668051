"""Scoring trained networks on the demo's held-out photos, and timing them on the CPU."""
from typing import Any, Dict, List

import torch
from basicsr.data import build_dataset
from basicsr.metrics import calculate_metric
from basicsr.utils import tensor2img
from torch.utils import benchmark

from .demo_recipe import METRICS, dataset_options


def cpu_latency_ms(net: torch.nn.Module, size: int = 256, threads: int = 2) -> float:
    """Median CPU latency of one 1 x 3 x size x size forward pass, in milliseconds."""
    x = torch.rand(1, 3, size, size)
    with torch.no_grad():
        timer = benchmark.Timer(stmt='net(x)', globals={'net': net, 'x': x}, num_threads=threads)
        return timer.blocked_autorange(min_run_time=1.0).median * 1e3


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

"""Parameter and FLOP counts, CPU latency and interleaved timing, shared by the training log, ``slkd-export``, the demo
and the benchmarks."""
import logging
import time
from typing import Any, Callable, Dict, Hashable, List, Optional, Sequence, Tuple

import torch
from mmengine.analysis import FlopAnalyzer
from torch import nn


def count_params(net: nn.Module) -> int:
    """Number of parameters (trainable or not)."""
    return sum(p.numel() for p in net.parameters())


def flop_analysis(net: nn.Module, input_shape: Tuple[int, int, int]) -> Tuple[int, List[str]]:
    """FLOPs of one forward pass on a 1 x C x H x W input, and the operators they leave out.

    Counted by ``mmengine.analysis.FlopAnalyzer``, which counts one multiply-add as one FLOP (as the papers'
    "FLOPs" do) for convolutions, linear layers and matrix products; element-wise operations, normalisation,
    softmax and top-k are not counted and are named in the returned list (sorted operator names).
    """
    device = next(net.parameters()).device
    was_training = net.training
    net.eval()
    with torch.no_grad():
        analyzer = FlopAnalyzer(net, (torch.rand(1, *input_shape, device=device), ))
        analyzer.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        flops = int(analyzer.total())
        uncounted = sorted(analyzer.unsupported_ops())
    net.train(was_training)
    return flops, uncounted


def count_flops(net: nn.Module, input_shape: Tuple[int, int, int]) -> int:
    """FLOPs (multiply-adds) of one forward pass on a 1 x C x H x W input; see :func:`flop_analysis`."""
    return flop_analysis(net, input_shape)[0]


def complexity_table(rows: Sequence[Tuple[str, nn.Module]], input_shape: Tuple[int, int, int]) -> str:
    """A text table of params and FLOPs per network, and each network's reduction against the first.

    Args:
        rows: (name, network) pairs; the first is the reference (the teacher).
        input_shape: C x H x W of the input the FLOPs are counted at.
    """
    counts = [(name, count_params(net), count_flops(net, input_shape)) for name, net in rows]
    ref_params, ref_flops = counts[0][1], counts[0][2]
    lines = [f'Complexity at {input_shape[1]}x{input_shape[2]} (FLOPs by mmengine.analysis, 1 MAC = 1 FLOP):',
             f'{"network":<12}{"params (M)":>12}{"GFLOPs":>10}{"params -%":>11}{"FLOPs -%":>10}']
    for name, params, flops in counts:
        lines.append(f'{name:<12}{params / 1e6:>12.3f}{flops / 1e9:>10.3f}'
                     f'{100 * (1 - params / ref_params):>11.1f}{100 * (1 - flops / max(ref_flops, 1)):>10.1f}')
    return '\n'.join(lines)


def interleaved_times(steps: Dict[Hashable, Callable[[], Any]], repeats: int,
                      device: Optional[torch.device] = None) -> Dict[Hashable, List[float]]:
    """Wall time in seconds of each of ``repeats`` calls of every step, after one warm-up round.

    The steps take turns (a, b, c, a, b, c, ...), so all of them see the same background load and their ratios
    are steadier than those of separate runs on a shared machine. On a CUDA ``device`` the clock waits for the
    GPU before and after each call.
    """
    def synchronise() -> None:
        if device is not None and device.type == 'cuda':
            torch.cuda.synchronize(device)

    times: Dict[Hashable, List[float]] = {name: [] for name in steps}
    for round_index in range(repeats + 1):
        for name, step in steps.items():
            synchronise()
            start = time.perf_counter()
            step()
            synchronise()
            if round_index:  # the first round warms up: first-call allocations and kernel selection
                times[name].append(time.perf_counter() - start)
    return times


def cpu_latency_ms(net: nn.Module, size: int = 256, threads: int = 2) -> float:
    """Median CPU latency of one 1 x 3 x size x size forward pass of ``net`` (on the CPU), in milliseconds."""
    # imported here and quietly: importing torch.utils.benchmark imports torch.utils.cpp_extension, which logs "No
    # CUDA runtime is found" on a machine with a CUDA toolkit and no GPU; that says nothing about a CPU timing, and
    # the entry points that import this module promise one line on stderr for a bad input
    cpp_extension_log = logging.getLogger('torch.utils.cpp_extension')
    level = cpp_extension_log.level
    cpp_extension_log.setLevel(logging.ERROR)
    try:
        from torch.utils import benchmark
    finally:
        cpp_extension_log.setLevel(level)

    x = torch.rand(1, 3, size, size)
    with torch.no_grad():
        timer = benchmark.Timer(stmt='net(x)', globals={'net': net, 'x': x}, num_threads=threads)
        return timer.blocked_autorange(min_run_time=1.0).median * 1e3

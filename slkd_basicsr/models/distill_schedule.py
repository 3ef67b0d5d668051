"""The weight of the distillation terms over training: constant (the papers) or annealed to the pixel loss alone."""
import math
from typing import Optional


def distill_weight(current_iter: int, anneal_iters: Optional[int]) -> float:
    """Factor on every distillation term (L_KD, L_NC, L_ET) at ``current_iter`` (BasicSR's, 1-based), in [0, 1].

    ``anneal_iters`` None: 1 throughout, as in the papers. Otherwise a half cosine from 1 at iteration 0 to 0 at
    ``anneal_iters`` and 0 after it (our choice, see docs/options.md): the teachers guide the early iterations and
    the last ones fit the ground truth alone, so a teacher the student is catching up with stops holding it back.
    """
    if anneal_iters is None:
        return 1.0
    progress = min(current_iter / anneal_iters, 1.0)
    return 0.5 * (1.0 + math.cos(math.pi * progress))

"""Each loss term's pull on the student, as a fraction of the pixel loss's: a dead or dominating term shows up."""
from typing import Dict, List, Sequence, Tuple

import torch
from torch import nn


def gradient_norm(loss: torch.Tensor, params: Sequence[nn.Parameter]) -> torch.Tensor:
    """L2 norm of d loss / d params over all ``params`` (0 for those the loss does not reach); keeps the graph."""
    if not loss.requires_grad:  # a term cut off from every parameter
        return torch.zeros((), device=loss.device)
    grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
    norms = [g.detach().float().norm() for g in grads if g is not None]
    return torch.stack(norms).norm() if norms else torch.zeros((), device=loss.device)


def gradient_shares(losses: List[Tuple[str, torch.Tensor]], params: Sequence[nn.Parameter],
                    reference: str = 'l_pix') -> Dict[str, torch.Tensor]:
    """``share_<term>``: each term's gradient norm on ``params`` divided by the ``reference`` term's.

    Args:
        losses: (name, scalar loss) pairs, each still attached to its graph; ``reference`` among them.
        params: The student's parameters.

    Returns:
        One 0-dim tensor per term other than ``reference`` (empty when ``reference`` is absent or gets no gradient).
    """
    named = dict(losses)
    if reference not in named:
        return {}
    ref = gradient_norm(named[reference], params)
    if ref.item() == 0:
        return {}
    return {f'share_{name}': gradient_norm(value, params) / ref for name, value in losses if name != reference}

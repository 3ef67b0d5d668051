"""What a run of several processes shares between its ranks (outside BasicSR's fixes in :mod:`.compat`)."""
from typing import Any, List

import torch.distributed as dist


def gather_per_rank(obj: Any) -> List[Any]:
    """Every rank's ``obj``, in rank order: a collective that every rank of a distributed run must enter;
    ``[obj]`` in a single process."""
    if not (dist.is_available() and dist.is_initialized()):
        return [obj]
    gathered: List[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, obj)
    return gathered

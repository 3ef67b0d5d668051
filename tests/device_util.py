"""Test helpers for device placement: a host-to-device copy counter and device / dtype assertions.

A training step on a GPU should not copy from host memory once it is warm: every such copy is a transfer the
CPU waits for (or a pinned staging buffer), and a cached constant copied again on every call is one per call.
Without a GPU, run the code on ``meta`` tensors: the copies it would make to ``cuda`` are then copies to
``meta``, and :class:`CopyCounter` counts both alike (any device other than the CPU counts as a device).

Usage::

    loss_fn(student, teacher)                 # warm-up: constants may be built and moved once
    with CopyCounter() as counter:
        loss_fn(student, teacher).backward()
    assert counter.h2d == 0, counter.events
"""
from typing import Any, Callable, Iterable, List, Optional, Tuple

import numpy as np
import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

# ATen ops whose whole job is to copy their first tensor argument (the source) into a result or into ``self``
_COPY_OPS = {
    torch.ops.aten._to_copy.default: 0,
    torch.ops.aten.copy_.default: 1,
    torch.ops.aten._copy_from.default: 0,
    torch.ops.aten._copy_from_and_resize.default: 0,
}
# torch functions that turn Python or NumPy data into a tensor without going through an ATen copy op
_FROM_DATA = {torch.tensor, torch.as_tensor, torch.asarray}
_INDEXING = {torch.Tensor.__getitem__, torch.Tensor.__setitem__}


def _on_device(x: Any) -> bool:
    """Whether ``x`` is a tensor outside host memory (cuda, meta, ...)."""
    return isinstance(x, torch.Tensor) and x.device.type != 'cpu'


def _on_host(x: Any) -> bool:
    return isinstance(x, torch.Tensor) and x.device.type == 'cpu'


def _is_data(x: Any) -> bool:
    """Python sequences and NumPy arrays: what torch converts to a tensor on the target device behind ATen's back."""
    return isinstance(x, (list, np.ndarray))


class _FunctionCounter(TorchFunctionMode):
    """Host data that becomes device data before any ATen op sees it: ``torch.tensor(data, device=...)`` and
    indexing a device tensor with a list or an array (converted to an index tensor on that device)."""

    def __init__(self, record: Callable[[str, str], None]):
        super().__init__()
        self.record = record

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if func in _FROM_DATA and args and not isinstance(args[0], torch.Tensor) and _on_device(out):
            self.record('h2d', f'{func.__name__}(data) -> {out.device}')
        elif func in _INDEXING and _on_device(args[0]):
            index = args[1] if isinstance(args[1], tuple) else (args[1], )
            for _ in filter(_is_data, index):
                self.record('h2d', f'Tensor.{func.__name__} with a host index -> {args[0].device}')
        return out


class _DispatchCounter(TorchDispatchMode):
    """ATen ops that read host tensors into device results, and ops that read device values back to the host."""

    def __init__(self, record: Callable[[str, str], None]):
        super().__init__()
        self.record = record

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        results = [t for t in tree_leaves(out) if isinstance(t, torch.Tensor)]
        if func in _COPY_OPS:
            source = args[_COPY_OPS[func]]
            if _on_host(source) and any(map(_on_device, results)):
                self.record('h2d', f'{func} {source.device} -> {results[0].device}')
            elif _on_device(source) and any(map(_on_host, results)):
                self.record('d2h', f'{func} {source.device} -> cpu')
        elif func is torch.ops.aten._local_scalar_dense.default and _on_device(args[0]):
            self.record('d2h', f'{func} (.item(), float(), bool()) on {args[0].device}')
        elif any(map(_on_device, results)):
            # a 0-dim host tensor is passed to device kernels as a scalar; any larger one must be copied over
            for t in tree_leaves((args, kwargs)):
                if _on_host(t) and t.dim() > 0:
                    self.record('h2d', f'{func} reads a host tensor {tuple(t.shape)} -> {results[0].device}')
        return out


class CopyCounter:
    """Context manager counting transfers between host memory and any other device in the code it runs.

    Attributes:
        h2d: host-to-device transfers: ATen copies (``.to(device)``, ``copy_``) from a CPU tensor to a non-CPU
            one, ops on the device that read a CPU tensor of one or more dimensions (e.g. a CPU index), and
            Python / NumPy data made into a device tensor (``torch.tensor(..., device=...)``, list indices).
        d2h: device-to-host transfers, i.e. synchronisations: ``.item()`` / ``float()`` / ``bool()`` of a device
            tensor and copies to the CPU.
        events: ``(kind, description)`` per transfer, in order, for assertion messages.

    Ops run in autograd's backward are seen too (the modes are part of the thread-local state the engine carries).
    """

    def __init__(self):
        self.events: List[Tuple[str, str]] = []
        self._modes = (_FunctionCounter(self._record), _DispatchCounter(self._record))

    def _record(self, kind: str, description: str) -> None:
        self.events.append((kind, description))

    @property
    def h2d(self) -> int:
        return sum(kind == 'h2d' for kind, _ in self.events)

    @property
    def d2h(self) -> int:
        return sum(kind == 'd2h' for kind, _ in self.events)

    def __enter__(self) -> 'CopyCounter':
        for mode in self._modes:
            mode.__enter__()
        return self

    def __exit__(self, *exc_info) -> None:
        for mode in reversed(self._modes):
            mode.__exit__(*exc_info)


def assert_placed(tensor: Optional[torch.Tensor], device: torch.device, dtype: torch.dtype, name: str) -> None:
    """Assert that ``tensor`` exists and has ``device`` and ``dtype``; ``name`` says which in the message."""
    assert tensor is not None, f'{name} is missing'
    assert (tensor.device, tensor.dtype) == (device, dtype), \
        f'{name} is {tensor.dtype} on {tensor.device}, expected {dtype} on {device}'


def assert_grads_placed(inputs: Iterable[torch.Tensor]) -> None:
    """Assert that every input that requires grad got a ``.grad`` on its own device and in its own dtype."""
    for k, x in enumerate(inputs):
        if x.requires_grad:
            assert_placed(x.grad, x.device, x.dtype, f'gradient of input {k}')

"""Mixed precision: ``train.amp`` / ``val.amp`` / ``distill.teacher_amp`` (``bf16`` | ``fp16`` | ``auto`` | false)
as an autocast context and a scaler.

The networks run under :func:`torch.autocast`; the losses upcast to float32 themselves (the NSS statistics never
run in half precision). fp16 needs a :class:`torch.amp.GradScaler` so that small gradients do not flush to zero;
bf16 has float32's range and needs none. Both work on CUDA; on a CPU bf16 is the useful one (fp16 autocast runs
but is slow there). ``auto`` is bf16 where the device computes it natively (CUDA GPUs from Ampere on, CPUs with
AVX512-BF16 or AMX) and full precision elsewhere, where bf16 would be emulated and slower than float32.
"""
import contextlib
from typing import Any, ContextManager, Optional

import torch

AMP_DTYPES = {'bf16': torch.bfloat16, 'fp16': torch.float16}


AUTO = 'auto'


def is_amp_value(value: Any) -> bool:
    """Whether ``value`` is a valid ``amp`` option: bf16, fp16, auto, false or null."""
    return value is None or value is False or (isinstance(value, str) and (value in AMP_DTYPES or value == AUTO))


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bfloat16 in hardware (not by emulation)."""
    if device.type == 'cuda':
        return torch.cuda.is_bf16_supported(including_emulation=False)
    if device.type == 'cpu':
        # oneDNN's own test of AVX512-BF16 / AMX; private, so a torch without it counts as no bf16
        probe = getattr(torch.ops.mkldnn, '_is_mkldnn_bf16_supported', None)
        return bool(torch.backends.mkldnn.is_available() and probe is not None and probe())
    return False


def amp_dtype(value: Any, key: str = 'train.amp', device: Optional[torch.device] = None) -> Optional[torch.dtype]:
    """The autocast dtype an ``amp`` option names on ``device`` (default: the CPU): None for false / null (full
    precision), and for ``auto`` where ``device`` has no native bf16.

    Raises:
        ValueError: naming ``key`` for any other value.
    """
    if not is_amp_value(value):
        raise ValueError(f'{key} must be bf16, fp16, auto or false, got {value!r}.')
    if value == AUTO:
        return torch.bfloat16 if native_bf16(device or torch.device('cpu')) else None
    return AMP_DTYPES[value] if value else None


def autocast(device: torch.device, dtype: Optional[torch.dtype]) -> ContextManager:
    """``torch.autocast`` on ``device``'s type with ``dtype``; a no-op context for None (full precision)."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def grad_scaler(device: torch.device, dtype: Optional[torch.dtype]) -> torch.amp.GradScaler:
    """A gradient scaler, enabled for fp16 only (disabled, its calls pass the loss and step through unchanged)."""
    return torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)

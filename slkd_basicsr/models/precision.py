"""Mixed precision: ``train.amp`` / ``val.amp`` (``bf16`` | ``fp16`` | false) as an autocast context and a scaler.

The networks run under :func:`torch.autocast`; the losses upcast to float32 themselves (the NSS statistics never
run in half precision). fp16 needs a :class:`torch.amp.GradScaler` so that small gradients do not flush to zero;
bf16 has float32's range and needs none. Both work on CUDA; on a CPU bf16 is the useful one (fp16 autocast runs
but is slow there).
"""
import contextlib
from typing import Any, ContextManager, Optional

import torch

AMP_DTYPES = {'bf16': torch.bfloat16, 'fp16': torch.float16}


def is_amp_value(value: Any) -> bool:
    """Whether ``value`` is a valid ``amp`` option: bf16, fp16, false or null."""
    return value is None or value is False or (isinstance(value, str) and value in AMP_DTYPES)


def amp_dtype(value: Any, key: str = 'train.amp') -> Optional[torch.dtype]:
    """The autocast dtype an ``amp`` option names: None for false / null (full precision).

    Raises:
        ValueError: naming ``key`` for any other value.
    """
    if not is_amp_value(value):
        raise ValueError(f'{key} must be bf16, fp16 or false, got {value!r}.')
    return AMP_DTYPES[value] if value else None


def autocast(device: torch.device, dtype: Optional[torch.dtype]) -> ContextManager:
    """``torch.autocast`` on ``device``'s type with ``dtype``; a no-op context for None (full precision)."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def grad_scaler(device: torch.device, dtype: Optional[torch.dtype]) -> torch.amp.GradScaler:
    """A gradient scaler, enabled for fp16 only (disabled, its calls pass the loss and step through unchanged)."""
    return torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)

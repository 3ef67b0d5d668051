"""Where and in which precision the NSS maths run: compute dtype, autocast-free regions, per-device constants.

Moment ratios such as ``E|x|^2 / E[x^2]`` and one-pass variances ``E[x^2] - mu^2`` cancel badly in half
precision, so the maths always run in float32 (float64 for float64 inputs), also inside an autocast region,
which would otherwise run every matrix product in bfloat16 / float16. The constant matrices and tables are built
once on the CPU in float64 and kept per (arguments, dtype, device), so that a warm training step copies nothing
from host memory (each such copy makes the host wait for a GPU).
"""
import contextlib
import functools
from functools import lru_cache
from typing import Any, Callable, ContextManager, Hashable, Optional, TypeVar

import torch
from torch._guards import detect_fake_mode
from torch._subclasses.fake_tensor import unset_fake_temporarily

Fn = TypeVar('Fn', bound=Callable[..., Any])


def compute_dtype(x: torch.Tensor) -> torch.dtype:
    """float64 for float64 inputs, float32 otherwise (half precision is too coarse for moment ratios)."""
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def autocast_off(device_type: str) -> ContextManager:
    """A region in which autocast leaves the dtype of ops on ``device_type`` tensors alone.

    Autocast is a per-device-type state; devices without autocast (e.g. ``meta``) need nothing.
    """
    if torch.amp.is_autocast_available(device_type):
        return torch.autocast(device_type, enabled=False)
    return contextlib.nullcontext()


def full_precision(fn: Fn) -> Fn:
    """Decorate a function of a map ``x`` (its first argument) to run on ``x`` in its compute dtype, autocast off.

    A half-precision ``x`` is upcast (its gradient flows back in its own dtype); float32 / float64 pass unchanged.
    """

    @functools.wraps(fn)
    def wrapper(x: torch.Tensor, *args, **kwargs) -> Any:
        with autocast_off(x.device.type):
            return fn(x.to(compute_dtype(x)), *args, **kwargs)

    return wrapper


def backward_autocast_off(backward: Fn) -> Fn:
    """Decorate an autograd Function's ``backward(ctx, grad, ...)`` to run with autocast off for grad's device.

    A backward called inside an autocast region would otherwise run its matrix products in half precision.
    """

    @functools.wraps(backward)
    def wrapper(ctx, grad: torch.Tensor, *grads: torch.Tensor):
        with autocast_off(grad.device.type):
            return backward(ctx, grad, *grads)

    return wrapper


@lru_cache(maxsize=None)
def _moved(build: Callable[..., torch.Tensor], args: tuple, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    return build(*args).to(dtype=dtype, device=device)


def device_constant(build: Callable[..., torch.Tensor],
                    *args: Hashable,
                    like: torch.Tensor,
                    dtype: Optional[torch.dtype] = None) -> torch.Tensor:
    """``build(*args)``, a constant CPU tensor, in ``dtype`` (default ``like.dtype``) on ``like``'s device.

    Plain tensors (any device, ``meta`` included) get it converted on the first call per (build, args, dtype,
    device) and then that same tensor: no host-to-device copy once warm. Callers must not modify it in place.
    Fake (or other subclass) tensors belong to a tracer: the constant is converted for them on every call, since
    a tensor of that kind in the cache would be reused outside its mode. ``build`` itself always runs on real
    CPU tensors, outside any fake mode (its result may be cached by the caller's ``lru_cache``).
    """
    dtype = dtype or like.dtype
    fake_mode = detect_fake_mode([like])
    # normal tensors even when first asked for under inference_mode, so that autograd may save them for backward
    with torch.inference_mode(False):
        if fake_mode is None and type(like) in (torch.Tensor, torch.nn.Parameter):
            return _moved(build, args, dtype, like.device)
        with unset_fake_temporarily():
            host = build(*args)
        if fake_mode is not None:
            host = fake_mode.from_tensor(host)
        return host.to(dtype=dtype, device=like.device)

"""``slkd-export``: a BasicSR network to ONNX with dynamic batch, height and width, checked against PyTorch.

Usage::

    slkd-export -opt options/test_slkd_derain.yml --out res_sl.onnx           # export + parity check
    slkd-export -opt options/test_slkd_derain.yml --out res_sl.onnx --bench   # + latency at 256 x 256
    python -m slkd_basicsr.tools.export -opt ... --out ...                    # the same

The network is ``network_g`` of any BasicSR options file, built with BasicSR's ``build_network`` and loaded
from ``path.pretrain_network_g`` (``param_key_g``, ``strict_load_g``) by the loader training uses,
:func:`slkd_basicsr.compat.checkpoints.load_network` (``weights_only=True``). The ONNX file takes
``input`` (B x C x H x W, float32) and gives ``output`` (B x C' x H x W); it is written atomically.

The parity check (on by default) runs onnxruntime on the CPU and the PyTorch network on the same random
inputs in [0, 1] at three sizes (one with odd height and width, one of batch 2) and fails above 1e-4.

The options file is read as data (``slkd_basicsr.compat.safe_yaml``: no python tags). ``--out`` may not be a
file the command reads (the options file, the checkpoint; compared by real path and inode), nor an existing file
unless ``--force`` is given.

Exit status: 0 on success, 1 when the export or the parity check fails (the file is kept and named), 2 for
bad input (arguments, options, checkpoint, output path, missing ``export`` extra), before any export work, and
for a ``--bench --bench-size`` below the smallest side the exported graph accepts, found once the graph is traced
and before anything is written or onnxruntime runs.
"""
import argparse
import inspect
import os
import secrets
import statistics
import sys
import tempfile
import warnings
from dataclasses import dataclass
from os import path as osp
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from slkd_basicsr.archs.networks import input_channels
from slkd_basicsr.compat.checkpoints import load_network
from slkd_basicsr.complexity import interleaved_times
from slkd_basicsr.errors import CheckpointError
from slkd_basicsr.tools.arguments import ArgumentParser, positive_int
from slkd_basicsr.tools.process import prepare_basicsr

EXTRA = "slkd-basicsr[export]"
PARITY_TOLERANCE = 1e-4
# a top-k whose k-th and (k+1)-th values are this close (relative) may keep either under another float rounding
TOPK_TIE_GAP = 1e-5
PARITY_DRAWS = 3
# ONNX LayerNormalization, which every transformer arch here uses, exists from opset 17
MIN_OPSET = 17
DEFAULT_OPSET = 17
# Attributes naming the multiple an arch pads H and W to inside forward (Uformer, Restormer/DRSformer, NAFNet);
# students subclass these archs and inherit them.
PAD_MULTIPLE_ATTRS = ('pad_multiple', 'downscale', 'padder_size')
INPUT, OUTPUT = 'input', 'output'
DYNAMIC_AXES = {0: 'batch', 2: 'height', 3: 'width'}


class ExportError(Exception):
    """Bad input for the export (options, checkpoint, output path, missing packages): one line for the user."""


@dataclass
class ExportedModel:
    """What was written: the file, its channels, the traced input shape and the smallest side it accepts."""
    path: str
    channels: int
    out_channels: int
    traced_shape: Tuple[int, int, int, int]
    min_side: int
    min_side_reason: Optional[str]


def require_export_extra() -> None:
    """Raise :class:`ExportError` naming the extra when onnx or onnxruntime cannot be imported."""
    for module in ('onnx', 'onnxruntime'):
        try:
            __import__(module)
        except ImportError:
            raise ExportError(f"{module} is not installed: pip install '{EXTRA}'") from None


def check_output_path(path: str, inputs: Dict[str, str], force: bool = False) -> str:
    """The absolute output path, after checking that it is none of ``inputs`` (what each is -> its path), that
    it does not exist unless ``force``, and that its folder exists and is writable."""
    path = osp.abspath(path)
    folder = osp.dirname(path)
    if osp.isdir(path):
        raise ExportError(f'--out {path!r} is a folder; give a file name such as {osp.join(path, "model.onnx")!r}.')
    for what, input_path in inputs.items():
        if _same_file(path, input_path):
            raise ExportError(f'--out {path!r} is {what} this command reads; writing there would replace it. Give '
                              'another file name.')
    if osp.lexists(path) and not force:
        raise ExportError(f'--out {path!r} already exists; pass --force to replace it, or give another file name.')
    if not osp.isdir(folder):
        raise ExportError(f'the output folder {folder!r} does not exist; create it first.')
    try:  # a real file rather than os.access, which says yes to root and knows no ACLs
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        raise ExportError(f'the output folder {folder!r} is not writable ({err.strerror}).') from None
    return path


def _same_file(path: str, other: str) -> bool:
    """Whether ``path`` and ``other`` name one file: the same real path (links resolved) or the same inode."""
    if osp.realpath(path) == osp.realpath(other):
        return True
    try:
        return osp.samefile(path, other)
    except OSError:  # either is missing
        return False


def read_options(path: str) -> Dict[str, Any]:
    """A BasicSR options file, read as data (``checks.options.read_options_file``), that has a ``network_g`` with a
    ``type`` and keywords its arch takes, of the types it takes (``checks.options.network_problems``)."""
    from slkd_basicsr.checks.options import OptionsError, network_problems, read_options_file

    if not osp.isfile(path):
        raise ExportError(f'options file not found: {path!r}.')
    try:
        opt = read_options_file(path)
    except OptionsError as err:
        raise ExportError(str(err)) from None
    if not isinstance(opt, dict) or not isinstance(opt.get('network_g'), dict) or 'type' not in opt['network_g']:
        raise ExportError(f'{path!r} has no network_g block with a type: slkd-export exports the network '
                          'described there (a BasicSR test or training options file).')
    problems = network_problems(opt['network_g'])
    if problems:
        raise ExportError(f'{path}: ' + ' '.join(problems))
    return opt


def checkpoint_settings(opt: Dict[str, Any], options_path: str,
                        checkpoint: Optional[str] = None) -> Tuple[str, Optional[str], bool]:
    """``(checkpoint path, param_key_g, strict_load_g)`` from the options' ``path`` section.

    Args:
        checkpoint: Overrides ``path.pretrain_network_g`` (e.g. a training file, where it is ``~``).
    """
    paths = opt.get('path') or {}
    checkpoint = checkpoint or paths.get('pretrain_network_g')
    if not checkpoint:
        raise ExportError(f'{options_path!r} sets no path.pretrain_network_g: set it to the weights to export '
                          '(or pass --checkpoint).')
    if not osp.isfile(checkpoint):
        raise ExportError(f'checkpoint not found: {checkpoint!r} (path.pretrain_network_g or --checkpoint).')
    return checkpoint, paths.get('param_key_g', 'params'), paths.get('strict_load_g', True)


def pad_multiple(net: nn.Module) -> int:
    """The multiple the network pads H and W to inside ``forward`` (1 when it declares none)."""
    for attr in PAD_MULTIPLE_ATTRS:
        value = getattr(net, attr, None)
        if isinstance(value, int) and value > 0:
            return value
    return 1


def _odd_non_multiple(start: int, multiple: int) -> int:
    """The smallest odd number >= ``start`` that is not a multiple of ``multiple`` (when that is above 1)."""
    side = start | 1
    while multiple > 1 and side % multiple == 0:
        side += 2
    return side


def parity_shapes(channels: int, multiple: int) -> List[Tuple[int, int, int, int]]:
    """Three B x C x H x W shapes for the parity check; the first (odd H and W) is also the traced one.

    Every side is at least the pad multiple, so each takes the same padding branch as the traced input: the
    first pads both sides, the second (batch 2) pads neither, the third pads an even height and an odd width.
    """
    base = multiple * -(-32 // multiple)
    odd_h = _odd_non_multiple(base + multiple // 2, multiple)
    odd_w = _odd_non_multiple(odd_h + 2, multiple)
    return [(1, channels, odd_h, odd_w), (2, channels, base, base + multiple),
            (1, channels, base + multiple + 2, _odd_non_multiple(base + 1, multiple))]


def _layer_norm_symbolic(g, input, normalized_shape, weight, bias, eps, cudnn_enable):  # noqa: A002
    """``aten::layer_norm`` for the TorchScript exporter, also when ``normalized_shape`` came from a tensor's shape.

    ``LayerNorm2d`` passes ``x.shape[1:2]``, which tracing records as a shape computation, and torch's own
    symbolic wants constants. ONNX's LayerNormalization only needs how many trailing axes are normalised:
    the length of that list.
    """
    from torch.onnx import symbolic_helper as sh

    shape = sh._maybe_get_const(normalized_shape, 'is')
    if sh._is_value(shape):
        shape = sh._unpack_list(normalized_shape)
    if sh._is_none(weight) or sh._is_none(bias):
        if sh._is_value(shape[0]):
            raise ExportError('layer_norm without weight or bias over a traced shape cannot be exported.')
        if sh._is_none(weight):
            weight = g.op('Constant', value_t=torch.ones(shape))
        if sh._is_none(bias):
            bias = g.op('Constant', value_t=torch.zeros(shape))
    return g.op('LayerNormalization', input, weight, bias, epsilon_f=sh._get_const(eps, 'f', 'eps'),
                axis_i=-len(shape))


def _finish_graph(path: str, out_channels: int) -> bool:
    """Give the ONNX file at ``path`` its static output channels; return whether its graph reflect-pads.

    The crop at the end of ``forward`` hides the channel count from ONNX's shape inference, which names it
    like a dynamic axis. A reflect pad matters because ONNX Runtime needs that pad smaller than the side.
    """
    import onnx

    model = onnx.load(path)
    channel_dim = model.graph.output[0].type.tensor_type.shape.dim[1]
    channel_dim.Clear()
    channel_dim.dim_value = out_channels
    onnx.save(model, path)
    onnx.checker.check_model(path)
    return any(
        node.op_type == 'Pad' and attr.name == 'mode' and attr.s == b'reflect' for node in model.graph.node
        for attr in node.attribute)


def _torch_onnx_export(net: nn.Module, sample: torch.Tensor, path: str, opset: int) -> int:
    """The TorchScript exporter with dynamic batch, height and width; returns the output channels.

    Tracing records the pad-to-a-multiple arithmetic in the archs' ``forward`` as shape computations, so the
    graph pads any H and W as PyTorch does; the torch.export exporter stops at the Python branch on
    ``H % multiple`` instead. The traced input must make every pad non-zero (odd H and W do).
    """
    kwargs = {'dynamo': False} if 'dynamo' in inspect.signature(torch.onnx.export).parameters else {}
    output_shapes = []
    hook = net.register_forward_hook(lambda module, inputs, output: output_shapes.append(output.shape))
    torch.onnx.register_custom_op_symbolic('aten::layer_norm', _layer_norm_symbolic, opset)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            # TracerWarnings flag exactly the shape branches the traced sample settles; the exporter's own
            # deprecation notice is about torch's default, not this call
            warnings.simplefilter('ignore')
            torch.onnx.export(net, (sample, ), path, opset_version=opset, input_names=[INPUT],
                              output_names=[OUTPUT], dynamic_axes={INPUT: DYNAMIC_AXES, OUTPUT: DYNAMIC_AXES},
                              do_constant_folding=True, **kwargs)
    finally:
        torch.onnx.unregister_custom_op_symbolic('aten::layer_norm', opset)
        hook.remove()
    return int(output_shapes[0][1])


def export_onnx(net: nn.Module, path: str, opset: int = DEFAULT_OPSET,
                side_needed: Optional[int] = None) -> ExportedModel:
    """Write ``net`` (eval mode, CPU) as ONNX to ``path`` through a temporary file and an atomic rename.

    ``side_needed`` is the smallest height and width the caller will feed (``--bench-size``): an
    :class:`ExportError` if the graph accepts no side that small. On any failure or interrupt the temporary file
    is removed and ``path`` is left as it was.
    """
    channels, multiple = input_channels(net), pad_multiple(net)
    shape = parity_shapes(channels, multiple)[0]
    sample = torch.rand(*shape, generator=torch.Generator().manual_seed(0))
    # not tempfile.mkstemp: its 0600 would stay on the renamed file; 0666 gives the umask's mode, as open() does
    tmp_name = f'.{osp.basename(path)}.{os.getpid()}.{secrets.token_hex(4)}.tmp'
    tmp_path = osp.join(osp.dirname(osp.abspath(path)), tmp_name)
    os.close(os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        out_channels = _torch_onnx_export(net, sample, tmp_path, opset)
        min_side, reason = _min_side(net, multiple, reflect=_finish_graph(tmp_path, out_channels))
        # before the rename, so that a file that --force would replace is left as it was
        if side_needed is not None and side_needed < min_side:
            raise ExportError(f'--bench-size {side_needed} is below {min_side}, the smallest height and width the '
                              f'exported graph accepts: {reason}. Use --bench-size {min_side} or more; nothing was '
                              'written.')
        os.replace(tmp_path, path)
    except BaseException:
        if osp.exists(tmp_path):
            os.remove(tmp_path)
        raise
    return ExportedModel(path, channels, out_channels, shape, min_side, reason)


def _min_side(net: nn.Module, multiple: int, reflect: bool) -> Tuple[int, Optional[str]]:
    """The smallest height and width the exported graph of ``net`` accepts, and why (None when it is 1)."""
    if not reflect:
        return 1, None
    min_side = multiple // 2 + 1
    return min_side, (f'{type(net).__name__} reflect-pads H and W to a multiple of {multiple}; reflection needs the '
                      f'pad to be smaller than the side, so ONNX Runtime refuses sides below {min_side} (PyTorch '
                      'switches to replicate padding there, a branch a traced graph cannot follow)')


class TopKGaps(TorchFunctionMode):
    """While active, records the smallest relative gap between the k-th and (k+1)-th value of every top-k taken.

    Top-k is discontinuous: where those two values differ by float rounding only, another runtime's rounding may
    keep the other one, and the outputs then differ for reasons that have nothing to do with the export.
    """

    def __init__(self) -> None:
        super().__init__()
        self.smallest = float('inf')

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in (torch.topk, torch.Tensor.topk):
            self._record(*args, **kwargs)
        return func(*args, **kwargs)

    def _record(self, values: torch.Tensor, k: int, dim: int = -1, largest: bool = True, **_: Any) -> None:
        if 0 < k < values.shape[dim]:
            top = values.topk(k + 1, dim=dim, largest=largest).values
            kth, after = top.select(dim, k - 1), top.select(dim, k)
            self.smallest = min(self.smallest, float(((kth - after).abs() / (kth.abs() + 1)).min()))


@dataclass
class ParityResult:
    """One parity size: the max |onnx - torch| of the input kept, and (relative top-k gap, max |onnx - torch|) of
    each input drawn before it and set aside for a top-k near-tie."""
    shape: Tuple[int, int, int, int]
    max_abs_diff: float
    topk_ties: List[Tuple[float, float]]


def check_parity(net: nn.Module, path: str, shapes: Sequence[Tuple[int, int, int, int]],
                 seed: int = 0) -> List[ParityResult]:
    """Max absolute difference between onnxruntime (CPU) and PyTorch outputs on the same random inputs in [0, 1].

    An input whose difference is above :data:`PARITY_TOLERANCE` while PyTorch's forward took a top-k with a
    near-tie (relative gap below :data:`TOPK_TIE_GAP`) is set aside and another is drawn, up to
    :data:`PARITY_DRAWS` inputs per size: the exported graph is judged away from the discontinuity. An export
    error shows up on every draw; the inputs set aside are reported.

    Returns:
        One :class:`ParityResult` per shape; ``inf`` where the output shapes differ.
    """
    import onnxruntime as ort

    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    generator = torch.Generator().manual_seed(seed)
    results = []
    for shape in shapes:
        ties = []
        for _ in range(PARITY_DRAWS):
            x = torch.rand(*shape, generator=generator)
            gaps = TopKGaps()
            with torch.no_grad(), gaps:
                expected = net(x).numpy()
            got = session.run([OUTPUT], {INPUT: x.numpy()})[0]
            diff = float(abs(got - expected).max()) if got.shape == expected.shape else float('inf')
            if diff <= PARITY_TOLERANCE or gaps.smallest >= TOPK_TIE_GAP:
                break
            ties.append((gaps.smallest, diff))
        results.append(ParityResult(tuple(shape), diff, ties))
    return results


def runtime_calls(net: nn.Module, path: str, shape: Tuple[int, int, int, int],
                  threads: int) -> Dict[str, Callable[[], Any]]:
    """One forward pass of ``net`` in PyTorch eager and of its ONNX file in onnxruntime (CPU), on the same input.

    Both runtimes get ``threads`` intra-op threads (PyTorch's is process-wide: set here), flush subnormal
    floats to zero (as ``slkd-demo`` does) and, with ``OMP_WAIT_POLICY=PASSIVE`` (to be set before torch is
    imported), let idle threads sleep rather than spin.

    Returns:
        ``{'pytorch': call, 'onnxruntime': call}``, each running one pass on a 1 x C x H x W random input.
    """
    import onnxruntime as ort

    from slkd_basicsr.tools.process import flush_denormals

    flush_denormals()
    torch.set_num_threads(threads)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry('session.set_denormal_as_zero', '1')
    # onnxruntime's threads spin between tasks unless told otherwise; follow PyTorch's OpenMP policy
    if os.environ.get('OMP_WAIT_POLICY', '').upper() == 'PASSIVE':
        options.add_session_config_entry('session.intra_op.allow_spinning', '0')
    session = ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])
    x = torch.rand(*shape, generator=torch.Generator().manual_seed(0))
    feed = {INPUT: x.numpy()}

    def pytorch() -> torch.Tensor:
        with torch.no_grad():
            return net(x)

    return {'pytorch': pytorch, 'onnxruntime': lambda: session.run([OUTPUT], feed)}


def measure_latency(net: nn.Module, path: str, shape: Tuple[int, int, int, int], threads: int,
                    repeats: int) -> Dict[str, float]:
    """Median ms of one forward pass in PyTorch eager and in onnxruntime: ``{'pytorch_ms', 'onnxruntime_ms'}``."""
    runs = interleaved_times(runtime_calls(net, path, shape, threads), repeats)
    return {f'{name}_ms': 1e3 * statistics.median(times) for name, times in runs.items()}


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """The export's arguments; a bad one is one error line, exit status 2."""
    parser = ArgumentParser(
        prog='slkd-export', description='Export network_g of a BasicSR options file to ONNX (dynamic batch, height '
        'and width), check it against PyTorch with onnxruntime, and optionally time both.')
    parser.add_argument('-opt', required=True, help='BasicSR options file (test or training) with network_g')
    parser.add_argument('--out', required=True, help='the .onnx file to write (its folder must exist)')
    parser.add_argument('--force', action='store_true', help='replace --out if it exists (never an input file)')
    parser.add_argument('--checkpoint', default=None, help='weights to load instead of path.pretrain_network_g')
    parser.add_argument('--opset', type=int, default=DEFAULT_OPSET,
                        help=f'ONNX opset (default {DEFAULT_OPSET}; at least {MIN_OPSET} for LayerNormalization)')
    parser.add_argument('--check', action=argparse.BooleanOptionalAction, default=True,
                        help=f'compare onnxruntime with PyTorch at three sizes, fail above {PARITY_TOLERANCE:g} '
                        '(default: on)')
    parser.add_argument('--bench', action='store_true',
                        help='time PyTorch eager and onnxruntime on the CPU at batch 1, --bench-size squared')
    parser.add_argument('--bench-size', type=positive_int, default=256,
                        help='height and width for --bench (default 256; at least the smallest side the graph '
                        'accepts, which the export states)')
    parser.add_argument('--threads', type=positive_int, default=None,
                        help='CPU threads for --bench, in both runtimes (default: torch.get_num_threads())')
    parser.add_argument('--repeats', type=positive_int, default=5,
                        help='timed passes per runtime for --bench (median)')
    args = parser.parse_args(argv)
    max_opset = getattr(getattr(torch.onnx, '_constants', None), 'ONNX_TORCHSCRIPT_EXPORTER_MAX_OPSET', None)
    if args.opset < MIN_OPSET or (max_opset is not None and args.opset > max_opset):
        parser.error(f'--opset {args.opset}: use {MIN_OPSET} (LayerNormalization) to {max_opset or "the latest"}.')
    return args


def _shape_str(shape: Sequence[int]) -> str:
    return 'x'.join(str(s) for s in shape)


def run(args: argparse.Namespace) -> int:
    """Validate every input, export, check parity, time; print one line per step. Returns the exit status."""
    require_export_extra()
    opt = read_options(args.opt)
    checkpoint, param_key, strict = checkpoint_settings(opt, args.opt, args.checkpoint)
    out = check_output_path(args.out, {'the options file (-opt)': args.opt, 'the checkpoint': checkpoint},
                            args.force)
    from basicsr.utils import get_root_logger

    try:
        net = load_network(opt['network_g'], checkpoint, param_key, strict, get_root_logger())
    except (CheckpointError, KeyError, ValueError, TypeError) as err:
        # a checkpoint that does not fit, an unknown type or bad arch arguments: BasicSR's own messages
        raise ExportError(str(err)) from None
    print(f'{opt["network_g"]["type"]} from {args.opt}, weights {checkpoint} '
          f'(param_key_g {param_key}, strict_load_g {strict})', flush=True)

    try:
        model = export_onnx(net, out, args.opset, side_needed=args.bench_size if args.bench else None)
    except ExportError:
        raise
    except Exception as err:  # the exporter raises many types; the user needs the arch and the reason
        print(f'slkd-export: export of {type(net).__name__} failed: {type(err).__name__}: {str(err).splitlines()[0]}',
              file=sys.stderr)
        return 1
    size_mb = osp.getsize(out) / 2**20
    print(f'wrote {out} ({size_mb:.1f} MB, opset {args.opset}, traced at {_shape_str(model.traced_shape)}): '
          f'{INPUT} float32 [batch, {model.channels}, height, width] -> {OUTPUT} [batch, {model.out_channels}, height, '
          'width]; batch, height and width dynamic')
    if model.min_side_reason:
        print(f'note: height and width must be at least {model.min_side}: {model.min_side_reason}.')

    if args.check:
        print(f'parity, onnxruntime (CPU) vs PyTorch on random inputs in [0, 1], fp32, tolerance '
              f'{PARITY_TOLERANCE:g}:')
        shapes = parity_shapes(model.channels, pad_multiple(net))
        try:
            results = check_parity(net, out, shapes)
        except Exception as err:  # onnxruntime refusing an input is a parity failure too
            print(f'slkd-export: parity check failed: onnxruntime: {str(err).splitlines()[0]}; '
                  f'the exported file is kept for inspection: {out}', file=sys.stderr)
            return 1
        for result in results:
            print(f'  {_shape_str(result.shape):>14}  max |onnx - torch| = {result.max_abs_diff:.3g}'
                  + ''.join(f'  (an input set aside before: top-k near-tie, relative gap {gap:.1g}, '
                            f'max |onnx - torch| {diff:.3g} there)' for gap, diff in result.topk_ties))
        worst = max(results, key=lambda r: r.max_abs_diff)
        if not worst.max_abs_diff <= PARITY_TOLERANCE:
            print(f'slkd-export: parity check failed: max |onnx - torch| = {worst.max_abs_diff:.3g} at '
                  f'{_shape_str(worst.shape)} '
                  f'is above {PARITY_TOLERANCE:g}; the exported file is kept for inspection: {out}', file=sys.stderr)
            return 1
        print('parity ok')

    if args.bench:
        threads = args.threads or torch.get_num_threads()
        shape = (1, model.channels, args.bench_size, args.bench_size)
        timing = measure_latency(net, out, shape, threads, args.repeats)
        print(f'latency at {_shape_str(shape)}, {threads} threads, median of {args.repeats}: '
              f'PyTorch eager {timing["pytorch_ms"]:.1f} ms, onnxruntime {timing["onnxruntime_ms"]:.1f} ms '
              f'({timing["pytorch_ms"] / timing["onnxruntime_ms"]:.2f}x)')
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    prepare_basicsr()  # BasicSR's registry then names an unknown network_g type with the known ones
    try:
        return run(args)
    except ExportError as err:
        print(f'slkd-export: error: {err}', file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print('slkd-export: interrupted; no partial .onnx was left behind.', file=sys.stderr)
        return 130


if __name__ == '__main__':
    sys.exit(main())

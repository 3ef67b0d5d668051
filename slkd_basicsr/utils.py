"""Small helpers shared by the entry points."""
import argparse
import tempfile
from os import path as osp
from typing import ContextManager, NoReturn, Optional

import torch


def root_path_for(script: str, package: Optional[str], cwd: str) -> str:
    """Root path for ``experiments/`` and ``results/``.

    Run as a console script or ``python -m``, the root is the working directory (the user's project);
    run as ``python slkd_basicsr/train.py`` from a clone, it is the clone's root, as in BasicSR.
    """
    if package in (None, ''):
        return osp.abspath(osp.join(osp.dirname(script), osp.pardir))
    return osp.abspath(cwd)


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser whose usage errors are one line, ``prog: error: message (see prog --help)``, exit status 2.

    The entry points report every other bad input in one line; argparse's multi-line usage block would bury the
    one line that says what is wrong.
    """

    def error(self, message: str) -> NoReturn:
        self.exit(2, f'{self.prog}: error: {message} (see {self.prog} --help)\n')


def _int_at_least(text: str, minimum: int) -> int:
    """``text`` as an integer of at least ``minimum``, or the argparse error that says which rule it breaks."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'{text!r} is not an integer') from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f'{value} is out of range; it must be >= {minimum}')
    return value


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (iterations, threads, repeats, sizes)."""
    return _int_at_least(text, 1)


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0 (seeds, optional iteration counts where 0 means none)."""
    return _int_at_least(text, 0)


def folder_path(text: str) -> str:
    """argparse type: the absolute path of a folder that exists or can be made, checked without making it.

    The nearest existing folder on the path must be a writable folder (tried with an unnamed temporary file rather
    than ``os.access``, which says yes to root and knows no ACLs), so that a run fails here and not after it has
    made half of its folders.
    """
    path = osp.abspath(text)
    if osp.lexists(path) and not osp.isdir(path):
        raise argparse.ArgumentTypeError(f'{path!r} is a file, not a folder; give a folder (it is made if needed)')
    existing = path
    while not osp.lexists(existing):
        existing = osp.dirname(existing)
    if not osp.isdir(existing):
        raise argparse.ArgumentTypeError(f'{path!r} cannot be made: {existing!r} is a file, not a folder')
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as err:
        made = '' if existing == path else f'{path!r} cannot be made: '
        raise argparse.ArgumentTypeError(f'{made}{existing!r} is not writable ({err.strerror})') from None
    return path


def flush_denormals() -> None:
    """Make the CPU treat subnormal floats (magnitude below 1.2e-38) as zero in this process.

    Trained networks can be full of them (the demo's Teacher A: 27% of its weights, 56% of its bottleneck's), and
    their activations then too; CPU arithmetic on subnormals is slow: that teacher's forward pass took 7x longer
    than with them flushed, for identical PSNR/SSIM. GPUs are unaffected.
    """
    torch.set_flush_denormal(True)


def autocast_of_test_options(options_path: Optional[str]) -> ContextManager:
    """The autocast context ``val.amp`` of the options file asks ``slkd-test`` for (a no-op when unset).

    The value is checked, with every other option, when BasicSR's pipeline parses the file; an invalid one here
    means no autocast, so that the check reports it.
    """
    from slkd_basicsr.models.precision import amp_dtype, autocast, is_amp_value
    from slkd_basicsr.options_check import read_options_file

    opt = read_options_file(options_path) if options_path else None
    opt = opt if isinstance(opt, dict) else {}
    amp = (opt.get('val') or {}).get('amp')
    num_gpu = opt.get('num_gpu', 0)
    device = torch.device('cuda' if num_gpu != 0 and torch.cuda.is_available() else 'cpu')
    return autocast(device, amp_dtype(amp, 'val.amp', device) if is_amp_value(amp) else None)

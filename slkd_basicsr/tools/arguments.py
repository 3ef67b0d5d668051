"""The command-line arguments of the console scripts: a one-line usage error and the argparse types they share."""
import argparse
import tempfile
from os import path as osp
from typing import NoReturn


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

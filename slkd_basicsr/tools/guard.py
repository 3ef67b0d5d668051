"""How a console script ends on a bad input: one line ``prog: <message>`` on stderr and exit status 2.

The project's errors (:class:`~slkd_basicsr.errors.UserError`: options, lock, data, checkpoint, tap, teacher check,
non-finite loss) carry their own message; the common OS faults get their reason, the path and what to do. Anything
else is a bug and keeps its traceback.
"""
import errno
import os
import sys
from typing import Callable, Optional, TypeVar

from slkd_basicsr.errors import UserError

T = TypeVar('T')  # what an entry point's main returns

# OS faults a user can fix, by errno, with what to do about them
OS_FAULTS = {
    errno.EACCES: 'check its permissions, or run from a folder you can write to',
    errno.EPERM: 'check its permissions, or run from a folder you can write to',
    errno.EROFS: 'the file system is read-only: run from a folder you can write to',
    errno.ENOENT: 'check the path (in the options file or on the command line)',
    errno.ENOTDIR: 'a part of the path is a file, not a folder: check the path',
    errno.EISDIR: 'a folder where a file is expected: check the path',
    errno.ELOOP: 'a loop of symbolic links: fix or remove the link',
    errno.ENOSPC: 'the disk is full: free some space, then run it again (slkd-train: with --auto_resume, to continue)',
    errno.EDQUOT: 'the disk quota is used up: free some space, then run it again (slkd-train: with --auto_resume, to '
                  'continue)',
    errno.ENAMETOOLONG: 'shorten the name or the path',
}
# set to 1 (or pass --debug) for the traceback of an error the entry points would print as one message
TRACEBACK_ENV = 'SLKD_TRACEBACK'


def error_message(err: BaseException) -> Optional[str]:
    """The message an entry point prints for ``err`` instead of a traceback: the project's own text, or for a
    common OS fault its reason, the path and what to do; None for anything else (a bug: its traceback is kept)."""
    if isinstance(err, UserError):
        return str(err)
    if isinstance(err, OSError) and err.errno in OS_FAULTS:
        where = f': {err.filename}' if err.filename else ''
        return f'{err.strerror}{where}; {OS_FAULTS[err.errno]}.'
    return None


def traceback_asked() -> bool:
    """Whether the user asked for tracebacks: ``SLKD_TRACEBACK`` set to anything but 0, or ``--debug``."""
    return os.environ.get(TRACEBACK_ENV, '0') not in ('', '0') or '--debug' in sys.argv


def main_guard(prog: str, main: Callable[[], T]) -> T:
    """Run an entry point's ``main`` and return what it returns; the project's errors (options, lock, data,
    checkpoint, tap, teacher check, non-finite loss) and the common OS faults end it with ``prog: <message>`` on
    stderr and exit status 2, without a traceback (the message says what to do) unless :func:`traceback_asked`."""
    try:
        return main()
    except Exception as err:
        message = error_message(err)
        if message is None or traceback_asked():
            raise
        print(f'{prog}: {message}', file=sys.stderr, flush=True)
        sys.exit(2)

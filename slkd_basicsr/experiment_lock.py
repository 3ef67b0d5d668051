"""A lock in the experiment folder, so that a second run with the same ``name`` cannot take over a live one.

BasicSR renames an existing ``experiments/<name>`` to ``<name>_archived_<time>`` and starts afresh; when the
first run is still alive it keeps writing checkpoints into the new folder. Here the running process holds an
exclusive ``flock`` on ``<folder>/.slkd_lock`` for as long as it lives (the kernel drops it when the process
exits or is killed, so a crashed run never leaves a live lock behind). The file records the holder's pid, host
and start time for the message. A second run with the same name stops with :class:`ExperimentLockedError`
naming the folder and the holder; a folder whose lock nobody holds (finished, crashed or killed run) is archived
by BasicSR as before and the new run locks the new folder.

Usage around BasicSR's folder handling (rank 0 only)::

    check_unlocked(experiments_root)           # before make_exp_dirs renames the folder
    make_exp_dirs(opt)
    lock = lock_experiment(experiments_root)   # held until release() or the process ends

and for a resumed run, which keeps its folder: ``lock_experiment(experiments_root)`` before writing to it.
"""
import atexit
import datetime
import errno
import fcntl
import os
import socket
from os import path as osp
from typing import Dict, Optional

LOCK_NAME = '.slkd_lock'

# Locks this process holds, by absolute folder path: an in-process run that ends without release() must not
# lock out the next in-process run (tests, notebooks), and every lock is released at interpreter exit.
_HELD: Dict[str, 'ExperimentLock'] = {}


class ExperimentLockedError(RuntimeError):
    """The experiment folder is locked by a live run."""


class ExperimentLock:
    """An exclusive lock on ``<folder>/.slkd_lock`` through an open file descriptor; see :func:`lock_experiment`.

    Attributes:
        folder: Absolute path of the experiment folder.
        reclaimed: The holder line of a stale lock this one replaced (a run that crashed or was killed), or None.
    """

    def __init__(self, folder: str, fd: int, reclaimed: Optional[str]) -> None:
        self.folder = folder
        self.reclaimed = reclaimed
        self._fd: Optional[int] = fd

    @property
    def path(self) -> str:
        return osp.join(self.folder, LOCK_NAME)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        """Remove the lock file and drop the lock (idempotent). The file goes first, while still locked, so no
        other process can lock the old file after this one lets go of it."""
        if self._fd is None:
            return
        try:
            if _same_file(self._fd, self.path):
                os.remove(self.path)
        finally:
            os.close(self._fd)
            self._fd = None
            _HELD.pop(self.folder, None)

    def __enter__(self) -> 'ExperimentLock':
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _same_file(fd: int, path: str) -> bool:
    """Whether ``path`` still names the file open as ``fd`` (it may have been removed or replaced meanwhile)."""
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except FileNotFoundError:
        return False


def _holder_line() -> str:
    started = datetime.datetime.now().astimezone().isoformat(timespec='seconds')
    return f'pid {os.getpid()} on {socket.gethostname()}, started {started}'


def _read_holder(path: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip() or 'an unknown process'
    except OSError:
        return 'an unknown process'


def _locked_message(folder: str, holder: str) -> str:
    return (f'The experiment folder {folder!r} is in use by a running training ({holder}). Two runs with the '
            'same name would write into one folder: wait for it to finish, stop it, or give this run another '
            'name in the options file.')


def _try_lock(path: str) -> Optional[int]:
    """Open ``path`` (created if missing) and take an exclusive non-blocking flock; None if another holds it.

    Retries when the file was removed or replaced between open and flock (its holder just released it).
    """
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            os.close(fd)
            if err.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                return None
            raise
        if _same_file(fd, path):
            return fd
        os.close(fd)


def check_unlocked(folder: str) -> None:
    """Raise :class:`ExperimentLockedError` if a live process other than this one holds ``folder``'s lock.

    Nothing is created: a missing folder or lock file, or a stale lock (holder gone), passes. A lock this
    process still holds on ``folder`` (an earlier in-process run) is released, so the folder can be archived.
    """
    folder = osp.abspath(folder)
    own = _HELD.get(folder)
    if own is not None:
        own.release()
        return
    path = osp.join(folder, LOCK_NAME)
    if not osp.isfile(path):
        return
    holder = _read_holder(path)
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:  # released meanwhile
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as err:
        if err.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            raise ExperimentLockedError(_locked_message(folder, holder)) from None
        raise
    finally:
        os.close(fd)


def lock_experiment(folder: str) -> ExperimentLock:
    """Lock the existing experiment ``folder`` for this process.

    Returns:
        The held lock (also released automatically at interpreter exit, and by the kernel if the process dies).
        ``reclaimed`` names the previous holder when a stale lock was taken over.

    Raises:
        ExperimentLockedError: another live process holds the lock; the message names the folder and the holder.
    """
    folder = osp.abspath(folder)
    own = _HELD.get(folder)
    if own is not None and own.held:
        return own
    path = osp.join(folder, LOCK_NAME)
    previous = _read_holder(path) if osp.isfile(path) else None
    fd = _try_lock(path)
    if fd is None:
        raise ExperimentLockedError(_locked_message(folder, _read_holder(path)))
    os.ftruncate(fd, 0)
    os.write(fd, (_holder_line() + '\n').encode())
    os.fsync(fd)
    lock = ExperimentLock(folder, fd, previous)
    _HELD[folder] = lock
    return lock


def release_all() -> None:
    """Release every lock this process holds (registered with ``atexit``)."""
    for lock in list(_HELD.values()):
        lock.release()


atexit.register(release_all)

"""A lock in the run's folder, so that a second run with the same ``name`` cannot take over a live one.

BasicSR renames an existing ``experiments/<name>`` (``results/<name>`` for ``slkd-test``) to
``<name>_archived_<time>`` and starts afresh; when the first run is still alive it keeps writing into the new
folder. Here the running process holds an exclusive ``flock`` on ``<folder>/.slkd_lock`` for as long as it lives
(the kernel drops it when the process exits or is killed, so a crashed run never leaves a live lock behind). The
file records the holder's pid, host and start time for the message. A second run with the same name stops with
:class:`ExperimentLockedError` naming the folder and the holder; a folder whose lock nobody holds (finished,
crashed or killed run) is archived as BasicSR does, and the new run locks the new folder.

The lock file is created with ``O_CREAT | O_EXCL | O_NOFOLLOW`` and an existing one is opened with ``O_NOFOLLOW``:
a symbolic link, or a file that is not a plain one of its own (a folder, a hard link to another file), planted at
``.slkd_lock`` is a :class:`LockFileError` and is never written through. :func:`lock_new_folder` archives an old
folder only while holding its lock, and makes the new folder's lock before anything else can, so two runs started
in the same instant cannot both run.

Usage around BasicSR's folder handling (rank 0 only)::

    check_unlocked(experiments_root)           # early: before anything is made
    lock = lock_new_folder(experiments_root)   # instead of make_exp_dirs' archive-and-mkdir; held until release()
                                               # or the process ends

and for a resumed run, which keeps its folder: ``lock_experiment(experiments_root)`` before writing to it.
"""
import atexit
import datetime
import errno
import fcntl
import os
import socket
import stat
import time
from os import path as osp
from typing import Callable, Dict, Optional

from slkd_basicsr.errors import UserError

LOCK_NAME = '.slkd_lock'
TRAINING, TEST = 'training', 'test'  # what a folder is locked for: experiments/<name> or results/<name>

# Locks this process holds, by absolute folder path: an in-process run that ends without release() must not
# lock out the next in-process run (tests, notebooks), and every lock is released at interpreter exit.
_HELD: Dict[str, 'ExperimentLock'] = {}


class ExperimentLockError(UserError, RuntimeError):
    """The run's folder cannot be locked: a live run holds it, or its lock file is not one this project made."""


class ExperimentLockedError(ExperimentLockError):
    """The experiment folder is locked by a live run."""


class LockFileError(ExperimentLockError):
    """The lock file is a symbolic link or not a plain file of its own: refused, never followed or written."""


class ExperimentLock:
    """An exclusive lock on ``<folder>/.slkd_lock`` through an open file descriptor; see :func:`lock_experiment`.

    Attributes:
        folder: Absolute path of the locked folder.
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

    def moved(self, folder: str) -> None:
        """Record that the locked folder was renamed to ``folder`` (the lock file moved with it)."""
        _HELD.pop(self.folder, None)
        self.folder = osp.abspath(folder)
        _HELD[self.folder] = self

    def __enter__(self) -> 'ExperimentLock':
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _same_file(fd: int, path: str) -> bool:
    """Whether ``path`` still names the file open as ``fd`` (it may have been removed or replaced meanwhile)."""
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path, follow_symlinks=False))
    except FileNotFoundError:
        return False


def _holder_line() -> str:
    started = datetime.datetime.now().astimezone().isoformat(timespec='seconds')
    return f'pid {os.getpid()} on {socket.gethostname()}, started {started}'


def _read_holder(fd: int) -> str:
    """The holder line in the open lock file ``fd`` ('' for an empty file)."""
    return os.pread(fd, 4096, 0).decode(errors='replace').strip()


def _holder_at(path: str) -> str:
    """The holder line of the lock file ``path``, read without following a link ('' when it cannot be read)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return ''
    try:
        return _read_holder(fd)
    finally:
        os.close(fd)


def _locked_message(folder: str, holder: str, kind: str) -> str:
    holder = holder or 'an unknown process'
    if kind == TEST:
        return (f'The results folder {folder!r} is in use by a running slkd-test ({holder}). Two tests with the same '
                'name would save their images into one folder: wait for it to finish, stop it, or give this test '
                'another name in the options file.')
    return (f'The experiment folder {folder!r} is in use by a running training ({holder}). Two runs with the '
            'same name would write into one folder: wait for it to finish, stop it, or give this run another '
            'name in the options file.')


def _not_plain(path: str, st: os.stat_result) -> LockFileError:
    if stat.S_ISLNK(st.st_mode):
        what = 'a symbolic link'
    elif not stat.S_ISREG(st.st_mode):
        what = 'not a plain file'
    else:
        what = f'a file with {st.st_nlink} names (a hard link to another file)'
    return LockFileError(f'The lock file {path!r} is {what}, which this project never makes; nothing was written '
                         'through it. Remove it and start the run again.')


def _open_lock_file(path: str) -> int:
    """Open the lock file ``path`` read-write, never through a link: created when missing (``O_EXCL``), else the
    existing plain file. Raises :class:`LockFileError` for anything else, ``FileNotFoundError`` when the folder
    is missing."""
    flags = os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC
    while True:
        try:
            return os.open(path, flags | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            pass
        try:
            fd = os.open(path, flags | os.O_NONBLOCK)
        except FileNotFoundError:
            continue  # removed between the two opens (its holder released it): create it
        except OSError as err:
            if err.errno in (errno.ELOOP, errno.EISDIR, errno.ENXIO):
                raise _not_plain(path, os.lstat(path)) from None
            raise
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:
            os.close(fd)
            raise _not_plain(path, st)
        return fd


def _try_lock(path: str) -> Optional[int]:
    """Open ``path`` (created if missing) and take an exclusive non-blocking flock; None if another holds it.

    Retries when the file was removed or replaced between open and flock (its holder just released it).
    """
    while True:
        fd = _open_lock_file(path)
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


def check_unlocked(folder: str, kind: str = TRAINING) -> None:
    """Raise :class:`ExperimentLockedError` if a live process other than this one holds ``folder``'s lock, and
    :class:`LockFileError` if the lock file is a link or not a plain file of its own.

    Nothing is created: a missing folder or lock file, or a stale lock (holder gone), passes. A lock this
    process still holds on ``folder`` (an earlier in-process run) is released, so the folder can be archived.
    ``kind`` (:data:`TRAINING` or :data:`TEST`) words the message.
    """
    folder = osp.abspath(folder)
    own = _HELD.get(folder)
    if own is not None:
        own.release()
        return
    path = osp.join(folder, LOCK_NAME)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:
        raise _not_plain(path, st)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:  # released meanwhile
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as err:
        if err.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            raise ExperimentLockedError(_locked_message(folder, _read_holder(fd), kind)) from None
        raise
    finally:
        os.close(fd)


def holds(folder: str) -> bool:
    """Whether this process holds ``folder``'s lock."""
    own = _HELD.get(osp.abspath(folder))
    return own is not None and own.held


def lock_experiment(folder: str, kind: str = TRAINING) -> ExperimentLock:
    """Lock the existing ``folder`` for this process.

    Returns:
        The held lock (also released automatically at interpreter exit, and by the kernel if the process dies).
        ``reclaimed`` names the previous holder when a stale lock was taken over.

    Raises:
        ExperimentLockedError: another live process holds the lock; the message names the folder and the holder.
        LockFileError: the lock file is a link or not a plain file of its own (nothing is written).
        FileNotFoundError: ``folder`` does not exist.
    """
    folder = osp.abspath(folder)
    own = _HELD.get(folder)
    if own is not None and own.held:
        return own
    path = osp.join(folder, LOCK_NAME)
    fd = _try_lock(path)
    if fd is None:
        raise ExperimentLockedError(_locked_message(folder, _holder_at(path), kind))
    previous = _read_holder(fd) or None  # a file left by a run that ended without releasing it
    os.ftruncate(fd, 0)
    os.pwrite(fd, (_holder_line() + '\n').encode(), 0)
    os.fsync(fd)
    lock = ExperimentLock(folder, fd, previous)
    _HELD[folder] = lock
    return lock


def lock_new_folder(folder: str, kind: str = TRAINING,
                    before_archive: Optional[Callable[[str], None]] = None) -> ExperimentLock:
    """Lock ``folder`` for a new run, as BasicSR's ``mkdir_and_rename`` makes it, without its two races.

    The folder is made (``mkdir``) or, when it exists, locked first; one holding more than its lock file is
    archived under that lock (``before_archive(folder)`` runs first, then it is renamed to
    ``<folder>_archived_<time>``, its lock going with it and then released), and the new folder is made and
    locked the same way. A run started in the same instant either finds a lock held or a folder that is not there
    yet, never an unlocked folder of a live run.

    Returns:
        The lock of the new, empty folder; ``reclaimed`` names the holder of a stale lock taken over on the way.

    Raises:
        ExperimentLockedError: a live run holds the folder (nothing was archived).
        LockFileError: the lock file is a link or not a plain file of its own.
    """
    folder = osp.abspath(folder)
    os.makedirs(osp.dirname(folder), exist_ok=True)
    reclaimed = None
    while True:
        try:
            os.mkdir(folder)
        except FileExistsError:
            pass
        try:
            lock = lock_experiment(folder, kind)
        except FileNotFoundError:  # archived by another run between the mkdir and the lock: start over
            continue
        reclaimed = reclaimed or lock.reclaimed
        if set(os.listdir(folder)) <= {LOCK_NAME}:
            lock.reclaimed = reclaimed
            return lock
        _archive(lock, before_archive)


def _archive(lock: ExperimentLock, before_archive: Optional[Callable[[str], None]]) -> None:
    """Rename the locked folder to ``<folder>_archived_<time>`` as BasicSR does, then release its lock there."""
    if before_archive is not None:
        before_archive(lock.folder)
    # BasicSR's get_time_str, without importing basicsr (this module loads without the package)
    archived = f"{lock.folder}_archived_{time.strftime('%Y%m%d_%H%M%S', time.localtime())}"
    print(f'Path already exists. Rename it to {archived}', flush=True)
    os.rename(lock.folder, archived)
    lock.moved(archived)
    lock.release()


def release_all() -> None:
    """Release every lock this process holds (registered with ``atexit``)."""
    for lock in list(_HELD.values()):
        lock.release()


atexit.register(release_all)

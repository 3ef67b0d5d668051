"""The base of the project's own errors: a message that says what to do, so no traceback is needed."""


class UserError(Exception):
    """An error caused by the user's input (options, files, data, networks) whose message names it and says what to
    do; the entry points print it as ``<prog>: <message>`` with exit status 2 (see
    :func:`slkd_basicsr.tools.guard.main_guard`). Each subclass also derives from the built-in error it used to
    be, so existing ``except ValueError`` and the like still catch it."""


class CheckpointError(UserError, RuntimeError):
    """A checkpoint or training state could not be read safely or does not fit."""

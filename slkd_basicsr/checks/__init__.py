"""Where options and runs are checked, before BasicSR makes anything: one room per kind of check.

- :mod:`.options`: the whole options dict, every problem in one :class:`~.options.OptionsError` (the ``train`` and
  ``distill`` sections in :mod:`.training`, one value or class keyword in :mod:`.values`, the known keys in
  :mod:`.schema`); reading an options file as data;
- :mod:`.types`: ``type`` names no registry knows (:class:`~.types.UnknownTypeError`);
- :mod:`.run`: what needs more than the options: the train dataset's length, the metrics tried once, the
  checkpoints, the taps, a resumed state;
- :mod:`.lock`: the experiment folder's lock, so that two runs never share a folder.

:mod:`slkd_basicsr.pipeline` has BasicSR's ``parse_options`` and friends call these (``parse``,
``experiment_folder``, ``resume``); nothing here changes BasicSR.
"""

"""What this plugin adds to BasicSR's train and test pipeline: one module per concern, one :func:`install`.

:mod:`slkd_basicsr.compat` adapts BasicSR 1.4.2 to today's torch, torchvision and CPU-only machines; this
package adds the plugin's own behaviour on top of it (docs/compatibility.md):

- :mod:`.parse`: the options checked before anything is made (``num_gpu`` settled by :mod:`.gpus`, the ``type``
  names, the run checks of :mod:`slkd_basicsr.checks`), in one ``parse_options`` wrapper whose body runs the
  steps in order;
- :mod:`.experiment_folder`: the experiment folder locked before BasicSR archives or writes into it;
- :mod:`.resume`: each rank's random states, the mid-epoch restart, the options file's learning rates and
  scheduler settings, the frozen teachers, the resume checked before anything is written;
- :mod:`.type_names`: unknown registry, optimiser and scheduler names answered with the names that were meant;
- :mod:`.data_errors`: BasicSR's own datasets name the file, key or folder of bad data;
- :mod:`.datasets`: BasicSR's train and test scripts take the datasets the run checks built, instead of building
  them again.

:func:`install` makes :func:`slkd_basicsr.compat.apply` first (this package builds on its safe state reading and
atomic writes, and replaces some of the same functions), then each module's ``install()``: each BasicSR function
is wrapped or replaced by one module, once. The entry points call it through
:func:`slkd_basicsr.tools.process.prepare_basicsr`; importing changes nothing.
"""
from .. import compat
from . import data_errors, datasets, experiment_folder, parse, resume, type_names

__all__ = ['install']

_installed = False


def install() -> None:
    """Adapt BasicSR (:func:`slkd_basicsr.compat.apply`), then add the plugin's behaviour, once; later calls do
    nothing."""
    global _installed
    if _installed:
        return
    compat.apply()  # first: resume replaces what compat.resume installed, building on it
    parse.install()
    experiment_folder.install()
    resume.install()
    type_names.install()
    data_errors.install()
    datasets.install()
    _installed = True

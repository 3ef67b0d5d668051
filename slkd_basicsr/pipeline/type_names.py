"""Unknown ``type`` names in the options stop the run at once, with the names that were meant: BasicSR's lookups
rebound to the errors of :mod:`slkd_basicsr.checks.types`.

BasicSR 1.4.2 raises ``KeyError("No object named 'X' found in 'arch' registry!")`` for an unknown registry
``type`` when the object is built (for ``val.metrics``, at the first validation, hours into training), and
``NotImplementedError('optimizer X is not supperted yet.')`` for an optimiser or scheduler it does not know.
:func:`install` replaces ``Registry.get`` (the same lookup; an unknown name raises
:class:`~slkd_basicsr.checks.types.UnknownTypeError` naming the registry, the closest registered names and the
option to check) and wraps ``BaseModel.get_optimizer`` / ``setup_schedulers`` to give an unknown optimiser or
scheduler the same kind of message (still a ``NotImplementedError``). Every registry ``type`` of the options is
looked up (:func:`~slkd_basicsr.checks.types.check_option_types`) before anything is made by the train and test
``parse_options`` (:mod:`.parse`).
"""
from typing import Any, Callable, Iterable

from ..checks.types import UnknownTypeError, unknown_name_message

# BasicSR 1.4.2 picks these with if/else in BaseModel, not through a registry: the names it accepts.
BASICSR_OPTIMIZERS = ('Adam', )
BASICSR_SCHEDULERS = ('MultiStepLR', 'MultiStepRestartLR', 'CosineAnnealingRestartLR')

# Where each BasicSR registry's names are chosen in an options file.
REGISTRY_OPTIONS = {
    'arch': 'the type of network_g / network_*',
    'dataset': 'the type of each datasets entry',
    'loss': 'the type of each train.*_opt',
    'metric': 'the type of each val.metrics entry',
    'model': 'model_type',
}


def registry_get(self, name: str, suffix: str = 'basicsr') -> Any:
    """``Registry.get``: the same lookup, an :class:`UnknownTypeError` for an unknown name."""
    obj = self._obj_map.get(name)
    if obj is None:
        obj = self._obj_map.get(f'{name}_{suffix}')
        if obj is not None:
            print(f'Name {name} is not found, use name: {name}_{suffix}!')
    if obj is None:
        known = {k[:-len(suffix) - 1] if k.endswith(f'_{suffix}') else k for k in self._obj_map}
        raise UnknownTypeError(unknown_name_message(self._name, name, known, f"BasicSR's {self._name} registry",
                                                    REGISTRY_OPTIONS.get(self._name)))
    return obj


def _known_choice(method: Callable, what: str, choices: Iterable[str], option: str, chosen: Callable) -> Callable:
    """Wrap a ``BaseModel`` method that picks ``what`` by name with if/else: an unknown name gets suggestions.

    ``chosen(self, *args, **kwargs)`` returns the name asked for.
    """

    def wrapped(self, *args, **kwargs):
        name = chosen(self, *args, **kwargs)
        if name not in choices:
            raise NotImplementedError(
                unknown_name_message(what, name, choices, "BasicSR 1.4.2's BaseModel", option, listed='Supported'))
        return method(self, *args, **kwargs)

    wrapped.__wrapped__ = method
    return wrapped


def install() -> None:
    """Replace ``Registry.get``; wrap ``BaseModel.get_optimizer`` and ``setup_schedulers``."""
    from basicsr.models.base_model import BaseModel
    from basicsr.utils.registry import Registry

    Registry.get = registry_get
    BaseModel.get_optimizer = _known_choice(BaseModel.get_optimizer, 'optimizer', BASICSR_OPTIMIZERS,
                                            'the type of train.optim_g', lambda self, optim_type, *_, **__: optim_type)
    BaseModel.setup_schedulers = _known_choice(BaseModel.setup_schedulers, 'scheduler', BASICSR_SCHEDULERS,
                                               'the type of train.scheduler',
                                               lambda self: self.opt['train']['scheduler'].get('type'))

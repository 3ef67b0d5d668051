"""Unknown ``type`` names in the options stop the run at once, with the names that were meant.

BasicSR 1.4.2 raises ``KeyError("No object named 'X' found in 'arch' registry!")`` for an unknown registry
``type`` when the object is built (for ``val.metrics``, at the first validation, hours into training), and
``NotImplementedError('optimizer X is not supperted yet.')`` for an optimiser or scheduler it does not know.
:func:`install` replaces ``Registry.get`` (the same lookup; an unknown name raises :class:`UnknownTypeError`
naming the registry, the closest registered names and the option to check), wraps the train and test
``parse_options`` so that every registry ``type`` is looked up (:func:`check_option_types`) before anything
is made, and wraps ``BaseModel.get_optimizer`` / ``setup_schedulers`` to give an unknown optimiser or scheduler
the same kind of message (still a ``NotImplementedError``).
"""
import difflib
from typing import Any, Callable, Dict, Iterable, Optional

from slkd_basicsr.errors import UserError

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


class UnknownTypeError(UserError, KeyError):
    """An options ``type`` that names nothing registered. A ``KeyError``, as BasicSR's ``Registry.get`` raises."""

    def __str__(self) -> str:  # KeyError's own __str__ is the repr of the message, quotes and escapes included
        return str(self.args[0])


def unknown_name_message(what: str, name: Any, known: Iterable[str], where: str, option: Optional[str] = None,
                         listed: str = 'Registered') -> str:
    """``No <what> named <name> in <where>. Did you mean: <close names>? <listed>: <all>. Check <option> ...``"""
    known = sorted(known)
    by_lower = {k.lower(): k for k in known}  # case slips ('restormer') count as close
    close = [by_lower[k] for k in difflib.get_close_matches(str(name).lower(), by_lower, n=3, cutoff=0.6)]
    message = f'No {what} named {name!r} in {where}.'
    if close:
        message += f' Did you mean: {", ".join(close)}?'
    message += f' {listed}: {", ".join(known)}.'
    if option:
        message += f' Check {option} in the options file.'
    return message


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


def check_option_types(opt: Dict[str, Any]) -> None:
    """Look up every registry ``type`` in parsed options; raises :class:`UnknownTypeError` for the first unknown.

    Uses the registries' ``get``, so the message is :func:`registry_get`'s once :func:`install` has run.
    """
    from basicsr.utils.registry import ARCH_REGISTRY, DATASET_REGISTRY, LOSS_REGISTRY, METRIC_REGISTRY, MODEL_REGISTRY

    sections = [(ARCH_REGISTRY, value) for key, value in opt.items() if key.startswith('network_')]
    sections += [(DATASET_REGISTRY, value) for value in (opt.get('datasets') or {}).values()]
    sections += [(LOSS_REGISTRY, value) for key, value in (opt.get('train') or {}).items() if key.endswith('_opt')]
    sections += [(METRIC_REGISTRY, value) for value in ((opt.get('val') or {}).get('metrics') or {}).values()]
    names = [(MODEL_REGISTRY, opt.get('model_type'))]
    names += [(registry, section.get('type')) for registry, section in sections if isinstance(section, dict)]
    for registry, name in names:
        if name is not None:
            registry.get(name)


def _types_checked(parse_options: Callable) -> Callable:
    """Wrap ``parse_options`` so that an unknown ``type`` stops the run before anything is made."""

    def wrapped(root_path, is_train=True):
        opt, args = parse_options(root_path, is_train)
        check_option_types(opt)
        return opt, args

    wrapped.__wrapped__ = parse_options
    return wrapped


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
    """Replace ``Registry.get``; wrap ``parse_options``, ``BaseModel.get_optimizer`` and ``setup_schedulers``."""
    import basicsr.test
    import basicsr.train
    from basicsr.models.base_model import BaseModel
    from basicsr.utils.registry import Registry

    Registry.get = registry_get
    basicsr.train.parse_options = _types_checked(basicsr.train.parse_options)
    basicsr.test.parse_options = _types_checked(basicsr.test.parse_options)
    BaseModel.get_optimizer = _known_choice(BaseModel.get_optimizer, 'optimizer', BASICSR_OPTIMIZERS,
                                            'the type of train.optim_g', lambda self, optim_type, *_, **__: optim_type)
    BaseModel.setup_schedulers = _known_choice(BaseModel.setup_schedulers, 'scheduler', BASICSR_SCHEDULERS,
                                               'the type of train.scheduler',
                                               lambda self: self.opt['train']['scheduler'].get('type'))

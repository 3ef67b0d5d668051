"""Unknown ``type`` names in the options: one error that names the registry, the close names and the option.

BasicSR 1.4.2 raises ``KeyError("No object named 'X' found in 'arch' registry!")`` for an unknown registry ``type``
when the object is built (for ``val.metrics``, at the first validation, hours into training). :func:`check_option_types`
looks up every registry ``type`` of parsed options before anything is made; the message of an unknown name
(:func:`unknown_name_message`) is the one of :class:`UnknownTypeError`, which
:mod:`slkd_basicsr.pipeline.type_names` makes ``Registry.get`` raise.
"""
from typing import Any, Dict, Iterable, Optional

from slkd_basicsr.errors import UserError
from .values import suggest


class UnknownTypeError(UserError, KeyError):
    """An options ``type`` that names nothing registered. A ``KeyError``, as BasicSR's ``Registry.get`` raises."""

    def __str__(self) -> str:  # KeyError's own __str__ is the repr of the message, quotes and escapes included
        return str(self.args[0])


def unknown_name_message(what: str, name: Any, known: Iterable[str], where: str, option: Optional[str] = None,
                         listed: str = 'Registered') -> str:
    """``No <what> named <name> in <where>. Did you mean: <close names>? <listed>: <all>. Check <option> ...``"""
    known = sorted(known)
    close = suggest(name, known)  # case slips ('restormer') count as close
    message = f'No {what} named {name!r} in {where}.'
    if close:
        message += f' Did you mean: {", ".join(close)}?'
    message += f' {listed}: {", ".join(known)}.'
    if option:
        message += f' Check {option} in the options file.'
    return message


def check_option_types(opt: Dict[str, Any]) -> None:
    """Look up every registry ``type`` in parsed options; raises :class:`UnknownTypeError` for the first unknown.

    Uses the registries' ``get``, so the message is :func:`unknown_name_message`'s once
    :func:`slkd_basicsr.pipeline.type_names.install` has replaced it.
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

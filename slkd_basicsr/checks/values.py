"""How one option is checked: the report its problems go into and the checks of a value or of a class's keywords.

A problem is a ``<dotted key>: <text>`` line of a :class:`Report`. The value checks say what was expected and what
was found (a number, a whole number in a range, true or false, a mixed-precision mode); :func:`check_constructor`
checks a section's keywords against the constructor of the class its ``type`` names (unknown keywords, missing
required ones, values of another type than the parameter's annotation or default). :func:`suggest` gives the close
names of a misspelt key or type (also for :mod:`.types`).
"""
import collections.abc
import difflib
import inspect
import math
import types
import typing
from typing import Any, Dict, Iterable, List, Optional, Set, Tuple

import yaml

CLOSE = 0.8  # difflib ratio above which an unknown key in an open section counts as a typo of a known one
# what a constructor parameter without a usable annotation takes, by the type of its default: Python code mixes ints
# and floats freely, so an int default takes any number (EDSR's res_scale=1 is set to 0.1)
DEFAULT_HINTS = {bool: bool, int: float, float: float, str: str, list: list, tuple: list}


def suggest(name: Any, known: Iterable[str], cutoff: float = 0.6) -> List[str]:
    """Up to three names of ``known`` closest to ``name`` (case slips such as 'restormer' count as close)."""
    by_lower = {k.lower(): k for k in known}
    return [by_lower[k] for k in difflib.get_close_matches(str(name).lower(), by_lower, n=3, cutoff=cutoff)]


def unknown_key_text(prefix: str, name: str, known: Iterable[str]) -> str:
    """``unknown key. Did you mean: <prefix><close>?`` or, with nothing close, the list of known keys."""
    known = sorted(known)
    close = suggest(name, known)
    if close:
        return 'unknown key. Did you mean: ' + ', '.join(prefix + k for k in close) + '?'
    return 'unknown key. Known keys: ' + ', '.join(known) + '.'


class Report:
    """Problems collected as ``<dotted key>: <text>`` lines."""

    def __init__(self) -> None:
        self.lines: List[str] = []

    def add(self, key: str, text: str) -> None:
        self.lines.append(f'{key}: {text}')

    def add_all(self, problems: Iterable[Tuple[str, str]]) -> None:
        """Add ``(key, text)`` problems (as :mod:`slkd_basicsr.models.slkd_options` gives them)."""
        for key, text in problems:
            self.add(key, text)

    def has(self, key: str) -> bool:
        """Whether a problem of ``key`` (or of an item of it, ``key[i]``) is reported already."""
        return any(line.startswith((f'{key}:', f'{key}[')) for line in self.lines)

    def section(self, opt: Dict[str, Any], key: str, dotted: str, required: bool) -> Optional[Dict[str, Any]]:
        """``opt[key]`` if it is a mapping; a problem if it is missing (when required) or not a mapping."""
        value = opt.get(key)
        if value is None:
            if required:
                self.add(dotted, 'missing; this section is required.')
            return None
        if not isinstance(value, dict):
            self.add(dotted, f'must be a mapping of options, got {value!r}.')
            return None
        return value

    def unknown(self, section: Dict[str, Any], dotted: str, known: Set[str], strict: bool = True) -> None:
        """Flag keys of ``section`` not in ``known``: all of them (``strict``), or those close to a known one."""
        for key in section:
            if key in known:
                continue
            if strict or suggest(key, known, CLOSE):
                self.add(f'{dotted}.{key}', unknown_key_text(f'{dotted}.', key, known))


# ---- values ----------------------------------------------------------------------------------------------------

def is_number(value: Any) -> bool:
    """A finite int or float (bools excluded)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def quoted(value: Any) -> str:
    """``repr(value)``, saying so when it is a string that YAML would read as another type without its quotes
    (``'false'``, ``'8'``): the quotes are the mistake."""
    text = repr(value)
    if isinstance(value, str):
        try:
            unquoted = yaml.safe_load(value)
        except yaml.YAMLError:
            return text
        if unquoted is not None and not isinstance(unquoted, str):
            text += ' (a quoted string)'
    return text


def not_a_number(value: Any) -> str:
    """What to say of a value that should have been a number."""
    text = quoted(value)
    if isinstance(value, str) and text == repr(value):  # a string even without quotes
        try:
            number = float(value)
        except ValueError:
            return f'must be a number, got {text}.'
        # PyYAML reads 2e-4 (no dot) as a string
        return f'must be a number, got {text} (a string: write {number!r} or !!float {value}).'
    return f'must be a number, got {text}.'


def check_number(report: Report, key: str, value: Any, low: float = -math.inf, high: float = math.inf,
                 low_open: bool = False, integer: bool = False, integral: bool = False) -> None:
    """Check a number: finite, in ``[low, high]`` (``(low, high]`` if ``low_open``); ``integer``: an int (bools
    excluded); ``integral``: an int or a float with an integral value (``!!float 5e3``)."""
    if not is_number(value):
        report.add(key, not_a_number(value))
        return
    if integer and not isinstance(value, int):
        report.add(key, f'must be a whole number, got {value!r}.')
        return
    if integral and value != int(value):
        report.add(key, f'must be a whole number, got {value!r}.')
        return
    if value < low or (low_open and value == low) or value > high:
        if high == math.inf:
            bound = f'> {_bound(low)}' if low_open else f'>= {_bound(low)}'
        else:
            bound = f'between {_bound(low)} and {_bound(high)}'
        report.add(key, f'{value!r} is out of range; it must be {bound}.')


def _bound(value: float) -> str:
    """A range's end as written in a message: whole numbers in full (a seed's 4294967295), others as %g."""
    return str(int(value)) if float(value).is_integer() else f'{value:g}'


def check_bool(report: Report, key: str, value: Any) -> None:
    """``value`` must be true or false."""
    if not isinstance(value, bool):
        report.add(key, f'must be true or false, got {quoted(value)}.')


def check_amp(report: Report, key: str, value: Any) -> None:
    """``value`` must be a mixed-precision mode (:func:`~slkd_basicsr.models.precision.is_amp_value`)."""
    from slkd_basicsr.models.precision import is_amp_value

    if not is_amp_value(value):
        report.add(key, f'must be bf16, fp16, auto (bf16 where the device has it natively) or false (mixed precision '
                   f'off), got {value!r}.')


def check_optional_str(report: Report, key: str, value: Any) -> None:
    """``value`` must be a path or ~."""
    if value is not None and not isinstance(value, str):
        report.add(key, f'must be a path (a string) or ~, got {value!r}.')


def _constructor(cls: Any) -> Tuple[Any, Dict[str, Any]]:
    """The class whose ``__init__`` declares ``cls``'s keywords, and the defaults ``cls`` puts in their place.

    A student preset (``ResSL``: ``StudentPreset`` on ``Restormer``) takes ``**overrides`` and passes them on to its
    parent arch, with its ``preset`` as the defaults.
    """
    from slkd_basicsr.archs.arch_util import StudentPreset

    if isinstance(cls, type) and issubclass(cls, StudentPreset):
        return next(c for c in cls.__mro__ if not issubclass(c, StudentPreset)), cls.preset
    return cls, {}


def _type_hints(cls: Any) -> Dict[str, Any]:
    """The resolved annotations of ``cls.__init__`` ({} when they cannot be resolved, e.g. a forward reference to a
    name the module does not define)."""
    try:
        return typing.get_type_hints(cls.__init__ if isinstance(cls, type) else cls)
    except Exception:  # noqa: BLE001  (NameError, TypeError, ...: then the types stay unknown, as unannotated)
        return {}


def _signature_params(cls: Any) -> Optional[Dict[str, inspect.Parameter]]:
    """Constructor keywords of ``cls``, with resolved annotations and the defaults ``cls`` gives them; None when it
    takes ``**kwargs`` (any keyword)."""
    target, preset = _constructor(cls)
    try:
        params = inspect.signature(target).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind == p.VAR_KEYWORD for p in params):
        return None
    hints = _type_hints(target)
    return {p.name: p.replace(annotation=hints.get(p.name, p.annotation), default=preset.get(p.name, p.default))
            for p in params
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in ('self', 'optimizer', 'params')}


def check_constructor(report: Report, section: Dict[str, Any], dotted: str, cls: Any, what: str) -> None:
    """Keys of ``section`` must be constructor keywords of ``cls`` with values of their types
    (:func:`_check_type`, for keys without a problem yet); its required keywords must be there."""
    params = _signature_params(cls)
    if params is None:
        return
    for key, value in section.items():
        if key == 'type':
            continue
        if key not in params:
            report.add(f'{dotted}.{key}', f'{what} takes no such argument. ' +
                       unknown_key_text(f'{dotted}.', key, params).replace('unknown key. ', ''))
        elif not report.has(f'{dotted}.{key}'):
            _check_argument(report, f'{dotted}.{key}', value, params[key])
    for key, param in params.items():
        if param.default is param.empty and key not in section:
            report.add(f'{dotted}.{key}', f'missing; {what} requires it.')


def _check_argument(report: Report, key: str, value: Any, param: inspect.Parameter) -> None:
    """Check a constructor argument against its parameter's annotation or, without one, its default's type; None
    is taken where the default is None or no annotation says otherwise."""
    annotated = param.annotation is not param.empty and not isinstance(param.annotation, str)
    hint = param.annotation if annotated else DEFAULT_HINTS.get(type(param.default))
    if hint is None or (value is None and (param.default is None or not annotated)):
        return
    _check_type(report, key, value, hint)


def _check_type(report: Report, key: str, value: Any, hint: Any) -> None:
    """Report ``value`` unless it can be a ``hint``: bool (true or false only), int (not a float or a string), float
    (an int or a float), str, a list or tuple (its items checked against an item type, if one), ``Optional`` of
    one of them. A hint of several types, a class or ``Any`` cannot be told from the options: anything passes."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        members = [a for a in args if a is not type(None)]
        if value is None and len(members) < len(args):
            return
        if len(members) == 1:
            _check_type(report, key, value, members[0])
        return
    if hint in (list, tuple) or origin in (list, tuple, collections.abc.Sequence):
        if not isinstance(value, (list, tuple)):
            report.add(key, f'must be a list, got {quoted(value)}.')
            return
        item = args[0] if len(args) == 1 or (len(args) == 2 and args[1] is Ellipsis) else None
        for i, entry in enumerate(value if item is not None else ()):
            _check_type(report, f'{key}[{i}]', entry, item)
    elif hint is bool:
        check_bool(report, key, value)
    elif hint is int and (isinstance(value, bool) or not isinstance(value, int)):
        report.add(key, f'must be a whole number, got {quoted(value)}.')
    elif hint is float and (isinstance(value, bool) or not isinstance(value, (int, float))):
        report.add(key, not_a_number(value))
    elif hint is str and not isinstance(value, str):
        report.add(key, f'must be a string, got {value!r}.')


def registered(registry: Any, name: Any) -> Any:
    """The class registered as ``name``, or None (unknown types are reported by :func:`.types.check_option_types`)."""
    return registry.get(name) if isinstance(name, str) and name in registry else None

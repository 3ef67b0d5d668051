"""Options files are data: read with a safe YAML loader that keeps BasicSR's ordered mapping.

BasicSR 1.4.2's ``parse_options`` reads the ``-opt`` file with ``yaml.load(f, Loader=ordered_yaml()[0])``, and
``ordered_yaml`` returns PyYAML's full ``Loader``: a python tag such as ``!!python/object/apply:os.system [...]``
runs when the file is read, so an options file downloaded with a recipe is code. Its mapping constructor
(``construct_pairs``) also keeps a merge key (``<<: *base``) as a key named ``<<``, keeps the last of two equal
keys silently, and gives an aliased mapping (``val: *trainset``) as the very dict of its anchor, so BasicSR's
``dataset['phase'] = phase`` on one section changes the other.

:class:`SafeOrderedLoader` reads the standard YAML types only (``!!float 2e-4`` included) into ``OrderedDict``
mappings, as BasicSR's loader does; any other tag is a :class:`RefusedTagError` and is never constructed; merge
keys are merged; a key given twice in one mapping is a :class:`DuplicateKeyError`; every use of an alias after
the first is a deep copy, so no two sections share one object. Both errors are ``yaml.YAMLError`` with the
line of the offending node. :func:`install` makes BasicSR's ``ordered_yaml`` (which ``parse_options`` looks up
when it runs) return this loader; :func:`load` is what the plugin's own readers use
(``checks.options.read_options_file``, ``slkd-export``).
"""
import copy
from collections import OrderedDict
from typing import IO, Any, Set, Tuple, Union

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, ScalarNode

_SAFE_LOADER = getattr(yaml, 'CSafeLoader', yaml.SafeLoader)  # the C parser when PyYAML was built with libyaml
_SAFE_DUMPER = getattr(yaml, 'CSafeDumper', yaml.SafeDumper)
MAPPING_TAG = yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG
MERGE_TAG = 'tag:yaml.org,2002:merge'
STANDARD_PREFIX = 'tag:yaml.org,2002:'


class RefusedTagError(ConstructorError):
    """A tag that is no standard YAML type (``!!python/...``, a custom ``!tag``): refused, never constructed."""


class DuplicateKeyError(ConstructorError):
    """A key given twice in one mapping."""


def short_tag(tag: str) -> str:
    """A tag as it is written in a file: ``!!python/name:os.system`` rather than its full URI."""
    return '!!' + tag[len(STANDARD_PREFIX):] if tag.startswith(STANDARD_PREFIX) else tag


def _refuse_tag(loader: 'SafeOrderedLoader', node: Node) -> None:
    """The constructor of every tag the safe loader does not know: raises :class:`RefusedTagError`."""
    tag = short_tag(node.tag)
    if tag.startswith('!!python/'):
        why = 'options files are data, and a python tag would run code as the file is read (nothing was run)'
    else:
        why = 'options files hold plain values only (strings, numbers, true/false, ~, lists, mappings, !!float)'
    raise RefusedTagError(None, None, f'the tag {tag} is refused: {why}. Write the value itself instead',
                          node.start_mark)


def _ordered_mapping(loader: 'SafeOrderedLoader', node: MappingNode) -> 'OrderedDict[Any, Any]':
    """A mapping as BasicSR's loader gives it (an ``OrderedDict``), its merge keys merged."""
    return OrderedDict(loader.construct_mapping(node))


class SafeOrderedLoader(_SAFE_LOADER):
    """PyYAML's safe loader with ``OrderedDict`` mappings, merge keys, no duplicate keys and unshared aliases."""

    def __init__(self, stream: Union[str, bytes, IO]) -> None:
        super().__init__(stream)
        self._keys_checked: Set[Node] = set()

    def construct_object(self, node: Node, deep: bool = False) -> Any:
        """Construct every node completely (``deep``), so that an alias met later copies a finished object."""
        if node in self.constructed_objects:
            return copy.deepcopy(self.constructed_objects[node])
        return super().construct_object(node, deep=True)

    def flatten_mapping(self, node: MappingNode) -> None:
        """Merge ``<<`` keys, after checking the mapping's own keys (merging may then override them, as YAML says)."""
        if node not in self._keys_checked:  # flattening rewrites node.value: check each mapping once, before
            self._keys_checked.add(node)
            self._check_duplicate_keys(node)
        super().flatten_mapping(node)

    def _check_duplicate_keys(self, node: MappingNode) -> None:
        first_line = {}
        for key_node, _ in node.value:
            if key_node.tag == MERGE_TAG or not isinstance(key_node, ScalarNode):
                continue
            key = self.construct_object(key_node)
            line = key_node.start_mark.line + 1
            if key in first_line:
                raise DuplicateKeyError(None, None, f'the key {key!r} is given twice in one mapping (first on line '
                                        f'{first_line[key]}); YAML would keep only the last value. Remove one of '
                                        'them', key_node.start_mark)
            first_line[key] = line


SafeOrderedLoader.add_constructor(MAPPING_TAG, _ordered_mapping)
SafeOrderedLoader.add_constructor(None, _refuse_tag)


class OrderedSafeDumper(_SAFE_DUMPER):
    """PyYAML's safe dumper that writes an ``OrderedDict`` as a plain mapping, as BasicSR's dumper does."""


OrderedSafeDumper.add_representer(OrderedDict, lambda dumper, data: dumper.represent_dict(data.items()))


def ordered_yaml() -> Tuple[type, type]:
    """``basicsr.utils.options.ordered_yaml``: the loader and dumper ``parse_options`` uses, both safe."""
    return SafeOrderedLoader, OrderedSafeDumper


def load(stream: Union[str, bytes, IO]) -> Any:
    """Read one YAML document with :class:`SafeOrderedLoader`.

    Raises:
        yaml.YAMLError: Bad YAML, a refused tag (:class:`RefusedTagError`) or a duplicate key
            (:class:`DuplicateKeyError`); ``problem_mark`` gives the line.
    """
    return yaml.load(stream, Loader=SafeOrderedLoader)


def install() -> None:
    """Replace ``basicsr.utils.options.ordered_yaml``, which ``parse_options`` calls for every options file."""
    from basicsr.utils import options

    options.ordered_yaml = ordered_yaml

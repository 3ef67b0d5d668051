"""Options files are data: python tags are refused (never run), aliases are copies, merge keys merge, keys are
unique; ``!!float`` and BasicSR's ordered mappings are kept."""
import sys
from collections import OrderedDict

import pytest
from basicsr.utils import options as basicsr_options

from helpers import run_entry, sr_options, write_options
from slkd_basicsr.checks.options import OptionsError, read_options_file
from slkd_basicsr.compat import safe_yaml

PWN = "pwn: !!python/object/apply:os.system ['echo ran >> MARKER']\n"

ALIASES = '''
name: aliased
datasets:
  train: &trainset
    name: shared
    type: PairedImageDataset
    nested: {crop: 8}
  val: *trainset
base: &base {type: Adam, lr: !!float 2e-4, betas: [0.9, 0.99]}
optim_g:
  <<: *base
  lr: !!float 1e-3
'''


def test_standard_tags_and_ordered_mappings_are_read_as_basicsr_reads_them():
    opt = safe_yaml.load('b: !!float 2e-4\na: 2e-4\nc: {z: 1, y: ~}\n')
    assert opt == {'b': 2e-4, 'a': '2e-4', 'c': {'z': 1, 'y': None}}  # PyYAML reads 2e-4 without a dot as a string
    assert type(opt) is OrderedDict and type(opt['c']) is OrderedDict and list(opt) == ['b', 'a', 'c']


def test_an_alias_is_a_copy_and_merge_keys_merge():
    opt = safe_yaml.load(ALIASES)
    train, val = opt['datasets']['train'], opt['datasets']['val']
    assert train == val and train is not val and train['nested'] is not val['nested']
    assert opt['optim_g'] == {'type': 'Adam', 'lr': 1e-3, 'betas': [0.9, 0.99]}  # the mapping's own key wins
    assert opt['optim_g']['betas'] is not opt['base']['betas']


@pytest.mark.parametrize('text, expected', [
    (PWN, 'the tag !!python/object/apply:os.system is refused: options files are data, and a python tag would run '
     'code'),
    ('a: 1\nb: !!python/name:os.system\n', 'line 2, column 4: the tag !!python/name:os.system is refused'),
    ('a: !custom 1\n', 'the tag !custom is refused: options files hold plain values only'),
])
def test_a_tag_that_is_no_standard_type_is_an_options_error_naming_the_line(tmp_path, text, expected):
    (tmp_path / 'MARKER').unlink(missing_ok=True)
    path = tmp_path / 'bad.yml'
    path.write_text(text)
    with pytest.raises(OptionsError, match='^' + str(path).replace('.', r'\.') + ', line ') as err:
        read_options_file(str(path))
    assert expected in str(err.value) and '\n' not in str(err.value)
    assert not (tmp_path / 'MARKER').exists()


def test_a_key_given_twice_is_an_options_error_naming_the_key_and_lines(tmp_path):
    path = tmp_path / 'dup.yml'
    path.write_text('train:\n  total_iter: 10\n  lr: 1\n  total_iter: 20\n')
    with pytest.raises(OptionsError) as err:
        read_options_file(str(path))
    assert str(err.value) == (f"{path}, line 4, column 3: the key 'total_iter' is given twice in one mapping (first "
                              'on line 2); YAML would keep only the last value. Remove one of them.')


def test_a_merge_key_may_be_overridden_but_an_own_key_not_repeated():
    assert safe_yaml.load('b: &b {x: 1}\nm: {<<: *b, x: 2}\n')['m'] == {'x': 2}
    with pytest.raises(safe_yaml.DuplicateKeyError):
        safe_yaml.load('b: &b {x: 1}\nm: {<<: *b, x: 2, x: 3}\n')


def test_basicsr_parse_options_reads_through_the_safe_loader(tmp_path, monkeypatch):
    """After compat.apply() (conftest), BasicSR's own parse_options: aliased datasets get their own phase."""
    path = tmp_path / 'aliased.yml'
    path.write_text(ALIASES + 'num_gpu: 0\nmanual_seed: 1\npath: {}\n')
    monkeypatch.setattr(sys, 'argv', ['slkd-train', '-opt', str(path)])
    opt, _ = basicsr_options.parse_options(str(tmp_path), is_train=True)
    assert opt['datasets']['train']['phase'] == 'train' and opt['datasets']['val']['phase'] == 'val'
    assert opt['optim_g']['lr'] == 1e-3 and '<<' not in opt['optim_g']
    assert basicsr_options.ordered_yaml()[0] is safe_yaml.SafeOrderedLoader


@pytest.mark.parametrize('module, is_train', [('slkd_basicsr.tools.train', True), ('slkd_basicsr.tools.test', False)])
def test_an_options_file_with_a_python_tag_runs_nothing(image_pairs, tmp_path, module, is_train):
    opt = sr_options(image_pairs)
    if not is_train:
        opt['datasets'] = {'test_1': opt['datasets']['val']}
    path = write_options(opt, str(tmp_path / 'pwn.yml'))
    with open(path, 'a') as f:
        f.write(PWN)
    proc = run_entry(module, ['-opt', path], str(tmp_path))
    assert proc.returncode == 2, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert 'Traceback' not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    line = len(open(path).read().splitlines())
    assert f'{path}, line {line}, column 6: the tag !!python/object/apply:os.system is refused' in proc.stderr
    assert not (tmp_path / 'MARKER').exists()
    assert not (tmp_path / 'experiments').exists() and not (tmp_path / 'results').exists()

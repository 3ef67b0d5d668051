import os
import re
import stat
import subprocess
import sys
import tempfile

import pytest
import torch
import yaml
from basicsr.archs import build_network

import slkd_basicsr  # noqa: F401  (registers the plugin)
from slkd_basicsr.tools import export

TINY = {
    'Restormer': {'type': 'Restormer', 'dim': 8, 'num_blocks': [1, 1, 1, 1], 'num_refinement_blocks': 1,
                  'heads': [1, 1, 2, 2], 'ffn_expansion_factor': 2.0},
    'Restormer-BiasFree': {'type': 'Restormer', 'dim': 8, 'num_blocks': [1, 1, 1, 1], 'num_refinement_blocks': 1,
                           'heads': [1, 1, 2, 2], 'LayerNorm_type': 'BiasFree'},
    'NAFNet': {'type': 'NAFNet', 'width': 8, 'enc_blk_nums': [1, 1], 'middle_blk_num': 1, 'dec_blk_nums': [1, 1]},
    'DRSformer': {'type': 'DRSformer', 'dim': 8, 'num_blocks': [1, 1, 1, 1], 'heads': [1, 1, 2, 2]},
    # windows shift at three levels (2 blocks there), so the shifted-window mask is in the graph
    'Uformer': {'type': 'Uformer', 'img_size': 32, 'embed_dim': 8, 'win_size': 4, 'modulator': True,
                'depths': [2, 1, 1, 1, 1, 1, 1, 1, 2], 'num_heads': [1] * 9},
    'Uformer-mlp-Teacher-B': {'type': 'Uformer', 'img_size': 32, 'embed_dim': 8, 'win_size': 4, 'token_mlp': 'mlp',
                              'depths': [1] * 9, 'num_heads': [1] * 9, 'global_residual': False},
    # the registered students, shrunk through their keyword overrides
    'ResSL': {'type': 'ResSL', 'dim': 8, 'num_blocks': [1, 1, 1, 1], 'heads': [1, 1, 2, 2]},
    'NAFSL': {'type': 'NAFSL', 'width': 8, 'enc_blk_nums': [1, 1], 'middle_blk_num': 1, 'dec_blk_nums': [1, 1]},
    'DRSSL': {'type': 'DRSSL', 'dim': 8, 'num_blocks': [1, 1, 1, 1], 'heads': [1, 1, 2, 2]},
    'UforSL': {'type': 'UforSL', 'img_size': 32, 'embed_dim': 8, 'win_size': 4, 'depths': [1] * 9,
               'num_heads': [1] * 9},
}


def write_case(folder, network_g, param_key='params', options_param_key='params', state=None):
    """A checkpoint of ``network_g`` with random weights and a test options file pointing at it."""
    torch.manual_seed(0)
    net = build_network(dict(network_g))
    checkpoint = str(folder / 'net_g.pth')
    torch.save({param_key: state if state is not None else net.state_dict()}, checkpoint)
    opt = {'name': 'export_test', 'model_type': 'SRModel', 'num_gpu': 0, 'network_g': network_g,
           'path': {'pretrain_network_g': checkpoint, 'param_key_g': options_param_key, 'strict_load_g': True}}
    options = folder / 'test.yml'
    options.write_text(yaml.safe_dump(opt))
    return net, str(options)


def parity_lines(out):
    return [(line.split()[0], float(line.split('=')[-1])) for line in out.splitlines() if 'max |onnx - torch|' in line]


@pytest.fixture
def no_export_work(monkeypatch):
    """Fail the test if the exporter is reached."""

    def refuse(*args, **kwargs):
        raise AssertionError('the exporter ran although the input was bad')

    monkeypatch.setattr(torch.onnx, 'export', refuse)


@pytest.mark.parametrize('family', sorted(TINY))
def test_every_family_exports_and_matches_pytorch_at_odd_sizes(family, tmp_path, capsys):
    import onnx
    import onnxruntime as ort

    net, options = write_case(tmp_path, TINY[family])
    out = tmp_path / 'model.onnx'
    assert export.main(['-opt', options, '--out', str(out)]) == 0
    printed = capsys.readouterr().out
    results = parity_lines(printed)
    assert len(results) == 3 and 'parity ok' in printed
    heights_widths = [tuple(int(s) for s in shape.split('x')[2:]) for shape, _ in results]
    assert any(h % 2 and w % 2 for h, w in heights_widths)
    assert [b for b, *_ in (shape.split('x') for shape, _ in results)] == ['1', '2', '1']
    assert all(diff <= 1e-4 for _, diff in results)

    graph = onnx.load(str(out)).graph
    dims = [[d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim] for v in (graph.input[0],
                                                                                         graph.output[0])]
    assert dims == [['batch', 3, 'height', 'width']] * 2
    # a size the check did not use, odd and non-square: the graph was not specialised to the checked sizes
    x = torch.rand(3, 3, 45, 71)
    with torch.no_grad():
        expected = net.eval()(x).numpy()
    got = ort.InferenceSession(str(out), providers=['CPUExecutionProvider']).run(None, {'input': x.numpy()})[0]
    assert got.shape == (3, 3, 45, 71)
    assert abs(got - expected).max() <= 1e-4


def test_reflect_padding_archs_state_their_smallest_side(tmp_path, capsys):
    _, options = write_case(tmp_path, TINY['Restormer'])
    assert export.main(['-opt', options, '--out', str(tmp_path / 'r.onnx'), '--no-check']) == 0
    assert 'note: height and width must be at least 5: Restormer reflect-pads H and W to a multiple of 8' in \
        capsys.readouterr().out
    (tmp_path / 'naf').mkdir()
    _, options = write_case(tmp_path / 'naf', TINY['NAFNet'])
    assert export.main(['-opt', options, '--out', str(tmp_path / 'n.onnx'), '--no-check']) == 0
    printed = capsys.readouterr().out
    assert 'note:' not in printed and 'parity' not in printed


def test_missing_checkpoint_is_refused_before_export(tmp_path, capsys, no_export_work):
    _, options = write_case(tmp_path, TINY['NAFNet'])
    os.remove(tmp_path / 'net_g.pth')
    assert export.main(['-opt', options, '--out', str(tmp_path / 'm.onnx')]) == 2
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and 'checkpoint not found' in err and 'net_g.pth' in err
    assert not list(tmp_path.glob('*.onnx'))


def test_wrong_param_key_is_refused_before_export(tmp_path, capsys, no_export_work):
    _, options = write_case(tmp_path, TINY['NAFNet'], param_key='weights', options_param_key='params_ema')
    assert export.main(['-opt', options, '--out', str(tmp_path / 'm.onnx')]) == 2
    err = capsys.readouterr().err
    assert 'params_ema' in err and 'weights' in err  # the key asked for and the keys the file has
    assert not list(tmp_path.glob('*.onnx'))


def test_checkpoint_of_another_network_is_refused(tmp_path, capsys, no_export_work):
    other = build_network({**TINY['NAFNet'], 'width': 16})
    _, options = write_case(tmp_path, TINY['NAFNet'], state=other.state_dict())
    assert export.main(['-opt', options, '--out', str(tmp_path / 'm.onnx')]) == 2
    assert 'shape mismatch' in capsys.readouterr().err


def test_a_non_strict_load_that_fits_almost_nothing_is_refused(tmp_path, capsys, no_export_work):
    """strict_load_g: false would export a network of random weights (BasicSR skips every tensor of another shape)."""
    other = build_network({**TINY['NAFNet'], 'width': 16})
    _, options = write_case(tmp_path, TINY['NAFNet'], state=other.state_dict())
    opt = yaml.safe_load(open(options))
    opt['path']['strict_load_g'] = False
    options = tmp_path / 'test.yml'
    options.write_text(yaml.safe_dump(opt))
    assert export.main(['-opt', str(options), '--out', str(tmp_path / 'm.onnx')]) == 2
    err = capsys.readouterr().err
    assert re.search(r"NAFNet checkpoint '.*net_g.pth' fits only \d+ of the network's \d+ tensors", err)
    assert err.count('\n') == 1 and not list(tmp_path.glob('*.onnx'))


def test_arch_arguments_of_the_wrong_type_are_refused(tmp_path, capsys, no_export_work):
    """global_residual: 'false' (quoted) would be true: the export would add the input to the output."""
    _, options = write_case(tmp_path, TINY['Restormer'])
    opt = yaml.safe_load(open(options))
    opt['network_g'].update(global_residual='false', dim='8')
    options = tmp_path / 'test.yml'
    options.write_text(yaml.safe_dump(opt))
    assert export.main(['-opt', str(options), '--out', str(tmp_path / 'm.onnx')]) == 2
    assert capsys.readouterr().err == (
        f"slkd-export: error: {options}: network_g.dim: must be a whole number, got '8' (a quoted string). "
        "network_g.global_residual: must be true or false, got 'false' (a quoted string).\n")
    assert not list(tmp_path.glob('*.onnx'))


def test_options_without_network_g_are_refused(tmp_path, capsys, no_export_work):
    options = tmp_path / 'train.yml'
    options.write_text(yaml.safe_dump({'name': 'x', 'path': {'pretrain_network_g': 'net.pth'}}))
    assert export.main(['-opt', str(options), '--out', str(tmp_path / 'm.onnx')]) == 2
    assert 'has no network_g block' in capsys.readouterr().err


def test_options_without_checkpoint_are_refused(tmp_path, capsys, no_export_work):
    options = tmp_path / 'train.yml'
    options.write_text(yaml.safe_dump({'network_g': TINY['NAFNet'], 'path': {'pretrain_network_g': None}}))
    assert export.main(['-opt', str(options), '--out', str(tmp_path / 'm.onnx')]) == 2
    assert 'sets no path.pretrain_network_g' in capsys.readouterr().err


def test_missing_output_folder_is_refused(tmp_path, capsys, no_export_work):
    _, options = write_case(tmp_path, TINY['NAFNet'])
    assert export.main(['-opt', options, '--out', str(tmp_path / 'nowhere' / 'm.onnx')]) == 2
    assert 'does not exist' in capsys.readouterr().err


def test_read_only_output_folder_is_refused(tmp_path, capsys, monkeypatch, no_export_work):
    _, options = write_case(tmp_path, TINY['NAFNet'])
    folder = tmp_path / 'ro'
    folder.mkdir()
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
    if os.geteuid() == 0:  # permissions do not bind root: refuse the file as the kernel would for a user

        def refuse(*args, **kwargs):
            raise PermissionError(13, 'Permission denied')

        monkeypatch.setattr(tempfile, 'TemporaryFile', refuse)
    try:
        assert export.main(['-opt', options, '--out', str(folder / 'm.onnx')]) == 2
    finally:
        folder.chmod(stat.S_IRWXU)
    assert 'is not writable (Permission denied)' in capsys.readouterr().err
    assert not list(folder.iterdir())


def test_missing_extra_is_named_in_one_line(tmp_path, capsys, monkeypatch, no_export_work):
    _, options = write_case(tmp_path, TINY['NAFNet'])
    monkeypatch.setitem(sys.modules, 'onnxruntime', None)  # import onnxruntime now raises ImportError
    assert export.main(['-opt', options, '--out', str(tmp_path / 'm.onnx')]) == 2
    err = capsys.readouterr().err
    assert err == "slkd-export: error: onnxruntime is not installed: pip install 'slkd-basicsr[export]'\n"


@pytest.mark.parametrize('args, message', [
    (['--bench-size', '0'], 'argument --bench-size: 0 is out of range; it must be >= 1'),
    (['--threads', '0'], 'argument --threads: 0 is out of range; it must be >= 1'),
    (['--repeats', '-2'], 'argument --repeats: -2 is out of range; it must be >= 1'),
    (['--bench-size', '2.5'], "argument --bench-size: '2.5' is not an integer"),
])
def test_bad_number_is_one_line(capsys, args, message):
    with pytest.raises(SystemExit) as exit_info:
        export.main(['-opt', 'x.yml', '--out', 'x.onnx', '--bench', *args])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == f'slkd-export: error: {message} (see slkd-export --help)\n'


def test_bench_size_below_the_graphs_smallest_side_is_one_line_and_writes_nothing(tmp_path, capsys, monkeypatch):
    import onnxruntime

    def refuse(*args, **kwargs):
        raise AssertionError('onnxruntime ran although --bench-size was below the smallest side')

    monkeypatch.setattr(onnxruntime, 'InferenceSession', refuse)
    _, options = write_case(tmp_path, TINY['Restormer'])
    out = tmp_path / 'm.onnx'
    out.write_bytes(b'an earlier model')
    assert export.main(['-opt', options, '--out', str(out), '--force', '--bench', '--bench-size', '4']) == 2
    err = capsys.readouterr().err
    assert err.startswith('slkd-export: error: --bench-size 4 is below 5, the smallest height and width the exported '
                          'graph accepts: Restormer reflect-pads H and W to a multiple of 8') and err.count('\n') == 1
    assert 'Use --bench-size 5 or more; nothing was written.' in err
    assert out.read_bytes() == b'an earlier model'  # even with --force: the check comes before the rename
    assert sorted(os.listdir(tmp_path)) == ['m.onnx', 'net_g.pth', 'test.yml']


def test_opset_below_layer_normalization_is_refused(capsys):
    with pytest.raises(SystemExit) as exit_info:
        export.parse_args(['-opt', 'x.yml', '--out', 'x.onnx', '--opset', '16'])
    assert exit_info.value.code == 2
    assert 'use 17 (LayerNormalization)' in capsys.readouterr().err


@pytest.mark.parametrize('failure, status', [(RuntimeError('exporter crashed'), 1), (KeyboardInterrupt(), 130)])
def test_failed_or_interrupted_write_leaves_no_file(tmp_path, capsys, monkeypatch, failure, status):
    _, options = write_case(tmp_path, TINY['NAFNet'])
    out = tmp_path / 'out'
    out.mkdir()
    written = []

    def half_write(net, args, path, **kwargs):
        with open(path, 'wb') as f:
            f.write(b'\x08\x07partial onnx')
        written.append(path)
        raise failure

    monkeypatch.setattr(torch.onnx, 'export', half_write)
    assert export.main(['-opt', options, '--out', str(out / 'm.onnx')]) == status
    assert written and os.path.dirname(written[0]) == str(out)  # the exporter did write, next to the target
    assert not list(out.iterdir())
    assert ('exporter crashed' if status == 1 else 'interrupted') in capsys.readouterr().err


def test_parity_failure_keeps_the_file_and_names_it(tmp_path, capsys, monkeypatch):
    _, options = write_case(tmp_path, TINY['NAFNet'])
    out = tmp_path / 'm.onnx'
    export_onnx = export.export_onnx

    def export_then_change_weights(net, path, opset, **kwargs):
        model = export_onnx(net, path, opset, **kwargs)
        with torch.no_grad():
            net.ending.bias.add_(1e-3)  # PyTorch now differs from the exported graph by 1e-3
        return model

    monkeypatch.setattr(export, 'export_onnx', export_then_change_weights)
    assert export.main(['-opt', options, '--out', str(out)]) == 1
    err = capsys.readouterr().err
    assert 'parity check failed' in err and 'above 0.0001' in err and str(out) in err
    assert out.is_file()


def test_module_entry_point_exports_and_times(tmp_path):
    _, options = write_case(tmp_path, TINY['NAFNet'])
    out = tmp_path / 'm.onnx'
    proc = subprocess.run([
        sys.executable, '-m', 'slkd_basicsr.tools.export', '-opt', options, '--out', str(out), '--bench',
        '--bench-size', '32', '--threads', '1', '--repeats', '2'
    ], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert 'parity ok' in proc.stdout
    timing = re.search(r'latency at 1x3x32x32, 1 threads, median of 2: PyTorch eager ([\d.]+) ms, '
                       r'onnxruntime ([\d.]+) ms', proc.stdout)
    assert timing and all(float(ms) > 0 for ms in timing.groups())
    assert out.is_file()


class Identity(torch.nn.Module):
    """B x C x H x W -> the same; with ``topk_tie`` it also takes a top-1 of two equal values (a tie)."""

    def __init__(self, topk_tie):
        super().__init__()
        self.topk_tie = topk_tie

    def forward(self, x):
        if self.topk_tie:
            x = x + 0 * torch.ones(2).topk(1).values
        return x


@pytest.mark.parametrize('topk_tie, wrong_runs, expected_ties, passes', [
    (True, 1, 1, True),  # the first input is set aside, the second matches
    (True, 5, 3, False),  # wrong on every draw: an export error, not a tie
    (False, 1, 0, False),  # no top-k: a difference is never set aside
])
def test_parity_sets_aside_only_inputs_at_a_topk_near_tie(monkeypatch, topk_tie, wrong_runs, expected_ties, passes):
    import onnxruntime

    runs = []

    class Session:
        """onnxruntime stand-in: the identity, off by 1e-3 on its first ``wrong_runs`` runs."""

        def __init__(self, path, providers):
            pass

        def run(self, names, feed):
            runs.append(1)
            return [feed['input'] + (1e-3 if len(runs) <= wrong_runs else 0)]

    monkeypatch.setattr(onnxruntime, 'InferenceSession', Session)
    [result] = export.check_parity(Identity(topk_tie), 'model.onnx', [(1, 3, 5, 7)])
    assert len(result.topk_ties) == expected_ties
    assert all(gap == 0 and diff == pytest.approx(1e-3, rel=1e-2) for gap, diff in result.topk_ties)
    assert (result.max_abs_diff <= export.PARITY_TOLERANCE) == passes


@pytest.mark.parametrize('umask, mode', [(0o022, 0o644), (0o027, 0o640)])
def test_exported_file_gets_the_umask_mode(tmp_path, monkeypatch, umask, mode):
    def write(net, sample, path, opset):
        with open(path, 'wb') as f:
            f.write(b'onnx')
        return 3

    monkeypatch.setattr(export, '_torch_onnx_export', write)
    monkeypatch.setattr(export, '_finish_graph', lambda path, out_channels: False)
    net = build_network(dict(TINY['NAFNet']))
    old = os.umask(umask)
    try:
        export.export_onnx(net, str(tmp_path / 'm.onnx'))
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / 'm.onnx').st_mode) == mode  # as the log and opt.yml, not 0600
    assert os.listdir(tmp_path) == ['m.onnx']


# ---- never overwrite an input (issue 26) -------------------------------------------------------------------------

def _input_as_out(tmp_path, kind):
    """``--out`` naming an input of the command: the file itself, a symlink to it, or a hard link (same inode)."""
    _, options = write_case(tmp_path, TINY['NAFNet'])
    target = {'options': options, 'checkpoint': str(tmp_path / 'net_g.pth')}[kind.split()[0]]
    if kind.endswith('symlink'):
        os.symlink(target, tmp_path / 'link.onnx')
        return options, target, str(tmp_path / 'link.onnx')
    if kind.endswith('hard link'):
        os.link(target, tmp_path / 'same.onnx')
        return options, target, str(tmp_path / 'same.onnx')
    return options, target, target


@pytest.mark.parametrize('kind, what', [
    ('checkpoint', 'the checkpoint'), ('options', 'the options file (-opt)'),
    ('checkpoint symlink', 'the checkpoint'), ('options hard link', 'the options file (-opt)'),
])
def test_out_may_not_be_an_input_even_with_force(tmp_path, capsys, no_export_work, kind, what):
    options, target, out = _input_as_out(tmp_path, kind)
    before = open(target, 'rb').read()
    assert export.main(['-opt', options, '--out', out, '--force']) == 2
    err = capsys.readouterr().err
    assert err == f'slkd-export: error: --out {os.path.abspath(out)!r} is {what} this command reads; writing there ' \
        'would replace it. Give another file name.\n'
    assert open(target, 'rb').read() == before


def test_an_existing_out_is_replaced_only_with_force(tmp_path, capsys, no_export_work, monkeypatch):
    _, options = write_case(tmp_path, TINY['NAFNet'])
    out = tmp_path / 'm.onnx'
    out.write_bytes(b'an earlier model')
    assert export.main(['-opt', options, '--out', str(out)]) == 2
    assert capsys.readouterr().err == f'slkd-export: error: --out {str(out)!r} already exists; pass --force to ' \
        'replace it, or give another file name.\n'
    assert out.read_bytes() == b'an earlier model'
    monkeypatch.undo()  # the exporter may run now
    assert export.main(['-opt', options, '--out', str(out), '--force', '--no-check']) == 0
    assert out.read_bytes() != b'an earlier model'
    assert sorted(os.listdir(tmp_path)) == ['m.onnx', 'net_g.pth', 'test.yml']


def test_options_with_a_python_tag_are_refused_and_run_nothing(tmp_path, capsys, no_export_work):
    _, options = write_case(tmp_path, TINY['NAFNet'])
    with open(options, 'a') as f:
        f.write(f"pwn: !!python/object/apply:os.system ['touch {tmp_path / 'MARKER'}']\n")
    assert export.main(['-opt', options, '--out', str(tmp_path / 'm.onnx')]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f'slkd-export: error: {options}, line ') and err.count('\n') == 1
    assert 'the tag !!python/object/apply:os.system is refused' in err
    assert not (tmp_path / 'MARKER').exists() and not list(tmp_path.glob('*.onnx'))

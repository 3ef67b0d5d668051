"""Importing the package changes nothing in BasicSR, nor do its library functions; ``compat.apply()`` makes every
adaptation, ``pipeline.install()`` adds the plugin's behaviour on top, each once."""
import json
import os
import subprocess
import sys

from helpers import REPO_ROOT

# In a fresh interpreter: import the package and every module in it; ours() lists what of BasicSR is ours (module
# functions and class methods that slkd_basicsr defined).
IMPORT_ALL = r'''
import importlib, json, pkgutil, sys
import slkd_basicsr
for info in pkgutil.walk_packages(slkd_basicsr.__path__, 'slkd_basicsr.'):
    importlib.import_module(info.name)
import basicsr.test, basicsr.train


def ours():
    found = {}
    for module_name, module in list(sys.modules.items()):
        if module_name.split('.')[0] != 'basicsr':
            continue
        for name, value in vars(module).items():
            if isinstance(value, type) and value.__module__.split('.')[0] == 'basicsr':
                for attr, member in vars(value).items():
                    if getattr(member, '__module__', None) and member.__module__.startswith('slkd_basicsr'):
                        found[f'{value.__module__}.{value.__qualname__}.{attr}'] = id(member)
            elif callable(value) and str(getattr(value, '__module__', '')).startswith('slkd_basicsr'):
                found[f'{module_name}.{name}'] = id(value)
    return found
'''
# before compat.apply(), after it, after pipeline.install() and after a second call of each
PROBE = IMPORT_ALL + r'''
before = ours()
from slkd_basicsr import compat, pipeline
compat.apply()
adapted = ours()
pipeline.install()
after = ours()
compat.apply()
pipeline.install()


def layers(value):
    # how many of our functions lie between BasicSR's caller and BasicSR's own function (or none)
    count = 0
    while value is not None and str(getattr(value, '__module__', '')).startswith('slkd_basicsr'):
        count, value = count + 1, getattr(value, '__wrapped__', None)
    return count


import basicsr.train
from basicsr.models.base_model import BaseModel
deepest = max(layers(value) for value in [*vars(basicsr.train).values(), *vars(BaseModel).values()])
print(json.dumps({'before': before, 'adapted': adapted, 'after': after, 'again': ours(), 'deepest': deepest}))
'''

# what compat.apply() alone replaces: the adaptations to today's torch and CPU-only machines
ADAPTED = {
    'basicsr.models.base_model.BaseModel.' + name
    for name in ('load_network', 'save_network', 'save_training_state', 'model_to_device')
} | {
    'basicsr.train.load_resume_state',
    'basicsr.utils.options.ordered_yaml',
    'basicsr.utils.dist_util.init_dist',
    'basicsr.utils.options.init_dist',
}
PATCHED_METHODS = {
    'basicsr.models.base_model.BaseModel.' + name
    for name in ('load_network', 'save_network', 'save_training_state', 'model_to_device', 'get_optimizer',
                 'setup_schedulers', 'resume_training')
} | {
    'basicsr.utils.registry.Registry.get',
    'basicsr.utils.file_client.FileClient.get',
    'basicsr.data.data_sampler.EnlargedSampler.__iter__',
    'basicsr.data.paired_image_dataset.PairedImageDataset.__getitem__',
}
PATCHED_FUNCTIONS = {
    'basicsr.train.load_resume_state',
    'basicsr.train.create_train_val_dataloader',
    'basicsr.train.parse_options',
    'basicsr.train.make_exp_dirs',
    'basicsr.train.copy_opt_file',
    'basicsr.test.parse_options',
    'basicsr.test.make_exp_dirs',
    'basicsr.train.build_dataset',
    'basicsr.test.build_dataset',
    'basicsr.utils.options.ordered_yaml',
    'basicsr.utils.dist_util.init_dist',
    'basicsr.utils.options.init_dist',
    'basicsr.utils.img_util.imfrombytes',
    'basicsr.data.paired_image_dataset.imfrombytes',
    'basicsr.data.data_util.paired_paths_from_folder',
    'basicsr.data.paired_image_dataset.paired_paths_from_lmdb',
}
# the data_io fix rebinds these wherever a BasicSR module imported them by name
REBOUND = ('imfrombytes', 'paired_paths_from_folder', 'paired_paths_from_lmdb')


# the package's one network loader (from options and into a network) and the export command's work short of
# main(), which is the entry point; sys.argv[1] is a folder for the files
LIBRARY_PROBE = IMPORT_ALL + r'''
import os
import torch
from basicsr.archs import build_network
from slkd_basicsr.compat.checkpoints import load_network
from slkd_basicsr.tools import export

network = {'type': 'NAFNet', 'width': 8, 'enc_blk_nums': [1, 1], 'middle_blk_num': 1, 'dec_blk_nums': [1, 1]}
checkpoint, options = os.path.join(sys.argv[1], 'net_g.pth'), os.path.join(sys.argv[1], 'test.yml')
torch.save({'params': build_network(dict(network)).state_dict()}, checkpoint)
load_network(network, checkpoint)
load_network(build_network(dict(network)), checkpoint, 'params_ema', strict=False)
with open(options, 'w') as f:
    json.dump({'network_g': network, 'path': {'pretrain_network_g': checkpoint}}, f)  # JSON is YAML
status = export.run(export.parse_args(['-opt', options, '--out', os.path.join(sys.argv[1], 'g.onnx'), '--no-check']))
print(json.dumps({'status': status, 'ours': ours()}))
'''


def _run_probe(probe, *args):
    env = dict(os.environ, PYTHONPATH=REPO_ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''))
    proc = subprocess.run([sys.executable, '-c', probe, *args], capture_output=True, text=True, env=env, cwd=REPO_ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.splitlines()[-1])


def test_import_changes_nothing_and_apply_patches_once():
    found = _run_probe(PROBE)
    assert found['before'] == {}
    assert set(found['adapted']) == ADAPTED
    after = set(found['after'])
    assert PATCHED_METHODS | PATCHED_FUNCTIONS <= after
    assert {name for name in after - PATCHED_METHODS if name.rsplit('.', 1)[1] not in REBOUND} <= PATCHED_FUNCTIONS
    assert found['again'] == found['after']
    assert found['deepest'] == 1, 'each BasicSR function is wrapped or replaced by one function of ours'


def test_loading_a_network_and_exporting_change_nothing():
    """Only entry points (their main()) call compat.apply(): the one network loader and the export's run() leave
    BasicSR as it is, BaseModel.load_network included."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        found = _run_probe(LIBRARY_PROBE, folder)
    assert found == {'status': 0, 'ours': {}}

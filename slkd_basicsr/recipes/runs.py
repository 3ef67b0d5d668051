"""Training one options dict through BasicSR's pipeline, as ``slkd-train`` does, in a subprocess."""
import os
import shutil
import subprocess
import sys
from os import path as osp
from typing import Any, Dict

import yaml


def train(opt: Dict[str, Any], workdir: str, quiet: bool = False) -> str:
    """Write ``opt`` to ``<workdir>/options/<name>.yml``, train through ``slkd_basicsr.train``; return net_g_latest.

    ``quiet`` keeps the run's console output (BasicSR's log file has it all) unless the run fails.
    """
    os.makedirs(osp.join(workdir, 'options'), exist_ok=True)
    opt_path = osp.join(workdir, 'options', f"{opt['name']}.yml")
    with open(opt_path, 'w') as f:
        yaml.safe_dump(opt, f, sort_keys=False)
    exp = osp.join(workdir, 'experiments', opt['name'])
    if osp.isdir(exp):  # a rerun starts afresh instead of archiving old runs
        shutil.rmtree(exp)
    print(f"\n=== training {opt['name']} ({opt['train']['total_iter']} iterations): {opt_path}", flush=True)
    proc = subprocess.run([sys.executable, '-m', 'slkd_basicsr.train', '-opt', opt_path], cwd=workdir,
                          capture_output=quiet, text=True)
    if proc.returncode:
        if quiet:  # the run's own output says why it failed
            print(proc.stdout + proc.stderr, file=sys.stderr)
        raise subprocess.CalledProcessError(proc.returncode, proc.args)
    return osp.join(exp, 'models', 'net_g_latest.pth')

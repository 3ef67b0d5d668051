"""Training one options dict through BasicSR's pipeline, as ``slkd-train`` does, in a subprocess."""
import os
import shutil
import subprocess
import sys
from os import path as osp
from typing import Any, Dict, Sequence

import yaml

# the child each run starts, with ``-opt <yml>`` appended
TRAIN_COMMAND = (sys.executable, '-m', 'slkd_basicsr.tools.train')


class RunFailed(subprocess.CalledProcessError):
    """A training run that exited non-zero: ``name`` is the run's, ``log`` the file with all of its output.

    A ``CalledProcessError``, so callers that catch that (the study) keep working.
    """

    def __init__(self, returncode: int, cmd: Sequence[str], name: str, log: str):
        super().__init__(returncode, cmd)
        self.name, self.log = name, log


def train(opt: Dict[str, Any], workdir: str, quiet: bool = False) -> str:
    """Write ``opt`` to ``<workdir>/options/<name>.yml``, train it (``slkd_basicsr.tools.train``); return net_g_latest.

    The run's output (stdout and stderr) goes to ``<workdir>/logs/<name>.log`` and, unless ``quiet``, to stdout
    as it comes; a quiet run that fails prints it to stderr. A failed run raises :class:`RunFailed`.
    """
    opt_path = osp.join(workdir, 'options', f"{opt['name']}.yml")
    log_path = osp.join(workdir, 'logs', f"{opt['name']}.log")
    for path in (opt_path, log_path):
        os.makedirs(osp.dirname(path), exist_ok=True)
    with open(opt_path, 'w') as f:
        yaml.safe_dump(opt, f, sort_keys=False)
    exp = osp.join(workdir, 'experiments', opt['name'])
    if osp.isdir(exp):  # a rerun starts afresh instead of archiving old runs
        shutil.rmtree(exp)
    print(f"\n=== training {opt['name']} ({opt['train']['total_iter']} iterations): {opt_path}", flush=True)
    cmd = [*TRAIN_COMMAND, '-opt', opt_path]
    returncode = run_logged(cmd, workdir, log_path, echo=not quiet)
    if returncode:
        if quiet:  # the run's own output says why it failed
            with open(log_path) as f:
                print(f.read(), file=sys.stderr)
        raise RunFailed(returncode, cmd, opt['name'], log_path)
    return osp.join(exp, 'models', 'net_g_latest.pth')


def run_logged(cmd: Sequence[str], cwd: str, log_path: str, echo: bool) -> int:
    """Run ``cmd`` with its stdout and stderr written to ``log_path`` (and to our stdout if ``echo``); its status.

    The log keeps the whole output of a run that fails, which the console may have scrolled past or never shown.
    """
    env = {**os.environ, 'PYTHONUNBUFFERED': '1'}  # a child writing to a pipe would otherwise echo in 8 kB blocks
    with open(log_path, 'w') as log, subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE,
                                                      stderr=subprocess.STDOUT, text=True, errors='replace') as proc:
        for line in proc.stdout:
            log.write(line)
            if echo:
                sys.stdout.write(line)
                sys.stdout.flush()
    return proc.returncode

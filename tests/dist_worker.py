"""One rank of the distributed test (``tests/test_distributed.py``), started by torchrun as a script.

Runs the real ``slkd_basicsr.tools.train`` entry module with the command line torchrun passes on, keeping the model
it builds and recording the indices its sampler draws, in ``rank<RANK>/`` under the working directory: each
rank has its own root path, as on nodes without a shared disk, so that anything a rank writes shows up under
its own folder. Afterwards the rank dumps what the test cannot see from outside to ``dump_rank<RANK>.pth``:
its process-group backend, its student and SCM weights, the sample indices its sampler drew in every epoch
as (epoch, indices), and the validation sets its model recorded results for.
"""
import os
import runpy

import torch

from slkd_basicsr.tools.process import prepare_basicsr  # first: basicsr needs the package's torchvision alias

# isort: split
import basicsr.train
from basicsr.data.data_sampler import EnlargedSampler


def main() -> None:
    prepare_basicsr()  # before the recording wrappers below, so that they see what the entry point runs
    rank = int(os.environ['RANK'])
    models, drawn = [], []

    build_model = basicsr.train.build_model

    def keep_model(opt):
        models.append(build_model(opt))
        return models[-1]

    sampler_iter = EnlargedSampler.__iter__

    def record_indices(self):
        indices = list(sampler_iter(self))
        drawn.append((self.epoch, indices))
        return iter(indices)

    basicsr.train.build_model = keep_model
    EnlargedSampler.__iter__ = record_indices

    base = os.getcwd()
    os.makedirs(f'rank{rank}')
    os.chdir(f'rank{rank}')
    runpy.run_module('slkd_basicsr.tools.train', run_name='__main__', alter_sys=True)

    model = models[0]
    torch.save({
        'backend': torch.distributed.get_backend(),
        'net_g': model.get_bare_model(model.net_g).state_dict(),
        'net_scm': model.get_bare_model(model.net_scm).state_dict(),
        'drawn': drawn,
        'validated': sorted(getattr(model, 'best_metric_results', {})),
    }, os.path.join(base, f'dump_rank{rank}.pth'))


if __name__ == '__main__':
    main()

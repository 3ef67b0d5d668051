"""Each dataset built once at start-up: the run checks, BasicSR's train.py and the teacher check share one."""
import logging
import os

import basicsr.train
import pytest
from basicsr.data.paired_image_dataset import PairedImageDataset
from basicsr.models import build_model

from helpers import in_process, slkd_options
from slkd_basicsr.checks.run import check_run
from slkd_basicsr.models.teacher_checks import TeacherCheckError


@pytest.fixture
def builds(monkeypatch):
    """The folders each PairedImageDataset built from now on lists (its ``dataroot_gt``), one entry per build."""
    built = []
    original = PairedImageDataset.__init__

    def counting(self, opt):
        built.append(opt['dataroot_gt'])
        original(self, opt)

    monkeypatch.setattr(PairedImageDataset, '__init__', counting)
    return built


def _start(opt):
    """What BasicSR's train.py does with parsed options up to the model: the run checks (our parse_options), the
    dataloaders, the model (its teachers measured on the first validation set)."""
    check_run(opt, True, 'test.yml')
    loaders = basicsr.train.create_train_val_dataloader(opt, logging.getLogger('basicsr'))
    return loaders, build_model(opt)


@pytest.mark.parametrize('check_teachers', [False, True])
def test_checks_basicsr_and_the_teachers_share_each_set(image_pairs, teachers, tmp_path, builds, basicsr_log,
                                                        check_teachers):
    opt = in_process(slkd_options(image_pairs, teachers))
    opt['distill']['check_teachers'] = check_teachers
    opt['path']['experiments_root'] = str(tmp_path / 'experiments' / opt['name'])
    check_run(opt, True, 'test.yml')
    train_loader, _, val_loaders, *_ = basicsr.train.create_train_val_dataloader(opt, logging.getLogger('basicsr'))
    if check_teachers:
        with pytest.raises(TeacherCheckError):  # random-weight teachers, measured on the set the checks built
            build_model(opt)
    else:
        build_model(opt)
    log = '\n'.join(basicsr_log)
    assert sorted(builds) == sorted([image_pairs['train']['gt'], image_pairs['val']['gt']])
    assert train_loader.dataset is not val_loaders[0].dataset
    assert log.count('Dataset [PairedImageDataset] - generated_val is built.') == 1  # BasicSR's line kept
    assert log.count('Teacher A on generated_val: psnr: ') == 1
    assert ('teacher A (degraded -> clean) PSNR' in log) == check_teachers
    assert ('on 2 images of generated_val' in log) == check_teachers


def test_a_new_start_lists_the_folders_anew(image_pairs, teachers, tmp_path, builds):
    opt = in_process(slkd_options(image_pairs, teachers))
    opt['path']['experiments_root'] = str(tmp_path / 'experiments' / opt['name'])
    (_, _, val_loaders, *_), _ = _start(opt)
    first = val_loaders[0].dataset
    (_, _, val_loaders, *_), _ = _start(opt)
    assert val_loaders[0].dataset is not first and len(builds) == 4
    assert os.listdir(image_pairs['val']['gt'])  # the same folders, listed again

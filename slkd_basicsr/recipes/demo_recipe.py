"""The demo's recipe: tiny Restormer teachers and student, scikit-image photos, losses and BasicSR options.

``slkd-demo`` runs it as it is; ``bench/study.py`` reuses its pieces for every arm of the distillation study.
"""
import copy
from os import path as osp
from typing import Any, Dict, List

from .tiny_nets import tiny_restormer

ASSETS = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'assets')
ASSET_TEACHER_A = osp.join(ASSETS, 'demo_teacher_a.pth')
ASSET_TEACHER_A_DENOISE = osp.join(ASSETS, 'demo_teacher_a_denoise.pth')
ASSET_TEACHER_B = osp.join(ASSETS, 'demo_teacher_b.pth')

TEACHER = tiny_restormer(dim=10, num_blocks=[1, 2, 2, 2], heads=[1, 2, 4, 8], ffn_expansion_factor=2.66)
TEACHER_B = {**TEACHER, 'global_residual': False}
# dim 4: 12% of the teacher's parameters, as the presets are (at most 15%)
STUDENT = tiny_restormer(dim=4, ffn_expansion_factor=2.66)

TRAIN_IMAGES = ['astronaut', 'chelsea', 'rocket', 'coins', 'brick', 'grass', 'gravel', 'moon']
VAL_IMAGES = ['coffee', 'camera']
# the held-out set: both photos at half size, each degraded HELD_OUT_DRAWS times (8 scored images)
VAL_SCALE = 0.5
HELD_OUT_DRAWS = 4
RAIN = [{'type': 'rain', 'density': [0.01, 0.03], 'length': [10, 25], 'angle': [-15, 15], 'brightness': [0.5, 0.8]}]
NOISE = [{'type': 'noise', 'sigma': [10, 40]}]
# no degradation: the clean->clean pairs Teacher B trains and is scored on
CLEAN: List[Dict[str, Any]] = []
# the recipes of the shipped teachers: teacher_a_options(ASSET_TEACHER_A_ITERS) on RAIN (demo_teacher_a.pth) and
# on NOISE (demo_teacher_a_denoise.pth); teacher_b_options(ASSET_TEACHER_B_ITERS) (demo_teacher_b.pth)
ASSET_TEACHER_A_ITERS = 2000
ASSET_TEACHER_B_ITERS = 1000
# the papers' distillation terms: L = L_pix + 0.5 L_KL + 0.1 L_NC + 0.1 L_ET
PAPER_LOSSES = {
    'kd_opt': {'type': 'ImageKLLoss', 'loss_weight': 0.5},
    'nc_opt': {'type': 'BRISQUEFeatureLoss', 'loss_weight': 0.1},
    'et_opt': {'type': 'PIQEFeatureLoss', 'loss_weight': 0.1},
}
# Our default: L_NC and L_ET at 0.02, a fifth of the papers' weight. At 0.1 their gradient is about half of
# L_pix's and over-constrains the student late in training. In bench/study.py (paired, 5 seeds) the light
# weights (arm slkd_light) beat the papers' (arm slkd) by +0.17 dB [+0.10, +0.23] on denoise, +0.14 dB
# [-0.18, +0.46] on derain.
SLKD_LOSSES = {
    'kd_opt': PAPER_LOSSES['kd_opt'],
    'nc_opt': {**PAPER_LOSSES['nc_opt'], 'loss_weight': 0.02},
    'et_opt': {**PAPER_LOSSES['et_opt'], 'loss_weight': 0.02},
}
# Our default for what the teachers cost: they (and the distillation terms) see a quarter of each batch, cropped
# to the centred 3/4 of each side. In bench/study.py (arm tb1_crop_3q against slkd_light, derain, 5 seeds)
# -0.11 dB [-0.37, +0.15] against the whole uncropped batch.
SLKD_DISTILL = {'teacher_batch': 0.25, 'teacher_crop': 0.75}
METRICS = {
    'psnr': {'type': 'calculate_psnr', 'crop_border': 0, 'test_y_channel': False},
    'ssim': {'type': 'calculate_ssim', 'crop_border': 0, 'test_y_channel': False},
    'piqe': {'type': 'calculate_piqe', 'crop_border': 0, 'better': 'lower'},
}


def dataset_options(phase: str, degradations: List[Dict[str, Any]], patch: int = 64) -> Dict[str, Any]:
    """A SyntheticDegradationDataset over scikit-image photos: 8 for training, 2 held out (``HELD_OUT_DRAWS``
    degradations of each, at ``VAL_SCALE``).

    The name says the degradations (``skimage_rain_train``; ``skimage_clean_train`` for clean->clean pairs).
    """
    kind = '+'.join(d['type'] for d in degradations) or 'clean'
    opt = {
        'name': f'skimage_{kind}_{phase}',
        'type': 'SyntheticDegradationDataset',
        'source': 'skimage',
        'skimage_images': TRAIN_IMAGES if phase == 'train' else VAL_IMAGES,
        'skimage_scale': 0.5 if phase == 'train' else VAL_SCALE,
        'degradations': degradations,
        'io_backend': {'type': 'disk'},
    }
    if phase == 'train':
        opt.update(gt_size=patch, use_hflip=True, use_rot=True, num_worker_per_gpu=0, batch_size_per_gpu=4,
                   dataset_enlarge_ratio=50, prefetch_mode=None)
    else:
        opt.update(seed=0, draws=HELD_OUT_DRAWS if degradations else 1)
    return opt


def run_options(name: str, network_g: Dict[str, Any], iters: int, train_degradations: List[Dict[str, Any]],
                lr: float, seed: int = 0) -> Dict[str, Any]:
    """BasicSR options for one demo training run (SRModel; :func:`slkd_options` turns it into SLKD)."""
    return {
        'name': name,
        'model_type': 'SRModel',
        'scale': 1,
        'num_gpu': 0,
        'manual_seed': seed,
        'datasets': {
            'train': dataset_options('train', train_degradations),
            'val': dataset_options('val', train_degradations),
        },
        'network_g': network_g,
        'path': {'pretrain_network_g': None, 'strict_load_g': True, 'resume_state': None},
        'train': {
            'optim_g': {'type': 'Adam', 'lr': lr, 'weight_decay': 1e-4, 'betas': [0.9, 0.999]},
            'scheduler': {'type': 'CosineAnnealingRestartLR', 'periods': [iters], 'restart_weights': [1],
                          'eta_min': lr / 10},
            'total_iter': iters,
            'warmup_iter': -1,
            'pixel_opt': {'type': 'L1Loss', 'loss_weight': 1.0, 'reduction': 'mean'},
        },
        'val': {'val_freq': iters, 'save_img': False, 'metrics': {k: METRICS[k] for k in ('psnr', 'ssim')}},
        'logger': {'print_freq': max(iters // 10, 1), 'save_checkpoint_freq': iters, 'use_tb_logger': False,
                   'wandb': None},
    }


def teacher_a_options(iters: int, degradations: List[Dict[str, Any]] = RAIN,
                      name: str = 'demo_teacher_a') -> Dict[str, Any]:
    """Teacher A trained from scratch on ``degradations`` (the shipped one: ``ASSET_TEACHER_A_ITERS`` on RAIN)."""
    return run_options(name, TEACHER, iters, degradations, lr=2e-3)


def teacher_b_options(iters: int, name: str = 'demo_teacher_b') -> Dict[str, Any]:
    """Teacher B: Teacher A's arch without the global residual, trained from scratch on clean->clean pairs.

    Our choice, measured on the held-out photos (clean->clean PSNR): from scratch at lr 2e-3 it reads 34.4 dB
    after 250 iterations, 38.4 after 500 and 40.5 after 1000 (the shipped one's run,
    ``bench/results/teacher_logs/demo_teacher_b.log``, as in docs/options.md); initialised from Teacher A
    instead (whose body predicts a residual, so without the global residual its output starts near zero) it
    reads 31.7 after 250 and 34.7 after 500. One Teacher B serves every task: it only ever sees clean images.
    """
    return run_options(name, TEACHER_B, iters, CLEAN, lr=2e-3)


def student_alone_options(iters: int, degradations: List[Dict[str, Any]] = RAIN, seed: int = 0,
                          name: str = 'demo_student_alone') -> Dict[str, Any]:
    """The student trained alone (L1 to the clean image), with the SLKD run's data, schedule and seed."""
    return run_options(name, STUDENT, iters, degradations, lr=2e-3, seed=seed)


def slkd_options(iters: int, teacher_a: str, teacher_b: str, degradations: List[Dict[str, Any]] = RAIN,
                 seed: int = 0, name: str = 'demo_slkd_student') -> Dict[str, Any]:
    """The SLKD run: loss weights 1 / 0.5 / 0.02 / 0.02 (``SLKD_LOSSES``), the teachers on a quarter of each batch
    (``SLKD_DISTILL``), Restormer default taps, gradient shares logged. With the same ``seed`` it sees the data,
    degradations and student initialisation of :func:`student_alone_options`."""
    opt = student_alone_options(iters, degradations, seed, name)
    opt.update(model_type='SLKDModel', network_teacher_a=TEACHER, network_teacher_b=TEACHER_B,
               distill={'log_grad_shares': True, **SLKD_DISTILL})
    opt['path'].update(pretrain_network_teacher_a=teacher_a, pretrain_network_teacher_b=teacher_b)
    opt['train'].update(copy.deepcopy(SLKD_LOSSES))
    return opt

"""Teacher checks before the first step: a logged PSNR per teacher, a clear stop for a useless one."""
import pytest
import torch
import torch.nn.functional as F
from basicsr.archs import build_network
from basicsr.models import build_model
from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn

from helpers import in_process, save_checkpoint, slkd_options, tiny_teacher, train_batch
from slkd_basicsr.models.teacher_checks import TeacherCheckError


@ARCH_REGISTRY.register()
class BoxBlurTeacher(nn.Module):
    """A 3 x 3 box blur: better than the input on the tests' noisy smooth images, the simplest restoring teacher."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.full((3, 1, 3, 3), 1 / 9))

    def forward(self, x):
        return F.conv2d(F.pad(x, (1, 1, 1, 1), mode='reflect'), self.weight, groups=3)


@pytest.fixture(scope='module')
def good_teachers(tmp_path_factory):
    """A blurring Teacher A and a Teacher B that copies its input (Restormer, global residual, zero head)."""
    root = tmp_path_factory.mktemp('good_teachers')
    copier = build_network(tiny_teacher(True))
    nn.init.zeros_(copier.output.weight)
    return {'a': save_checkpoint(build_network({'type': 'BoxBlurTeacher'}), str(root / 'blur.pth')),
            'b': save_checkpoint(copier, str(root / 'copier.pth'))}


def _options(image_pairs, teachers, **distill):
    opt = in_process(slkd_options(image_pairs, teachers))
    opt['distill'] = {'log_complexity': False, **distill}
    return opt


def _kd_only(opt):
    """Only L_KL: Teacher A needs no taps, so any restoring arch can be it."""
    del opt['train']['nc_opt'], opt['train']['et_opt']
    opt['network_teacher_a'] = {'type': 'BoxBlurTeacher'}
    return opt


def test_a_teacher_a_must_beat_its_input(image_pairs, good_teachers):
    opt = _kd_only(_options(image_pairs, good_teachers))
    model = build_model(opt)
    scores = model.teacher_scores
    assert scores['teacher_a'] > scores['input'] + 1
    opt = _options(image_pairs, good_teachers)
    opt['network_teacher_a'] = opt['network_teacher_b'] = tiny_teacher(True)
    opt['path']['pretrain_network_teacher_a'] = good_teachers['b']  # a copier: exactly as good as its input
    with pytest.raises(TeacherCheckError, match='teacher A') as err:
        build_model(opt)
    assert 'teacher B' not in str(err.value)  # the copier is a perfect Teacher B


def test_log_lines_name_each_teacher_and_the_set(image_pairs, good_teachers, basicsr_log):
    build_model(_kd_only(_options(image_pairs, good_teachers)))
    line = next(line for line in basicsr_log if 'Teacher check: teacher A' in line)
    assert "vs the degraded input's own" in line and '2 images of generated_val' in line


def test_random_teachers_stop_the_run_naming_both(image_pairs, teachers):
    with pytest.raises(TeacherCheckError) as err:
        build_model(_options(image_pairs, teachers))
    message = str(err.value)
    assert 'teacher A (path.pretrain_network_teacher_a)' in message
    assert 'teacher B (path.pretrain_network_teacher_b)' in message
    assert 'distill.min_teacher_b_psnr = 30 dB' in message and 'distill.check_teachers: false' in message


def test_teacher_b_threshold_is_an_option(image_pairs, teachers, good_teachers):
    opt = _options(image_pairs, {'a': good_teachers['a'], 'b': teachers['b']}, min_teacher_b_psnr=-100)
    _kd_only(opt)
    opt['train']['et_opt'] = {'type': 'PIQEFeatureLoss', 'loss_weight': 0.1}
    build_model(opt)  # the random Teacher B passes a threshold of -100 dB
    opt['distill']['min_teacher_b_psnr'] = 30
    with pytest.raises(TeacherCheckError, match=r'teacher B .* below distill.min_teacher_b_psnr = 30 dB'):
        build_model(opt)


def test_check_teachers_false_skips(image_pairs, teachers):
    model = build_model(_options(image_pairs, teachers, check_teachers=False))
    assert not hasattr(model, 'teacher_scores')


def test_without_a_validation_set_the_first_batch_is_checked(image_pairs, teachers):
    opt = _options(image_pairs, teachers)
    del opt['datasets']['val']
    model = build_model(opt)  # nothing to measure on yet
    model.feed_data(train_batch(opt))
    with pytest.raises(TeacherCheckError, match='teacher A'):
        model.optimize_parameters(1)
    assert all(p.grad is None for p in model.net_g.parameters())  # stopped before the step


@ARCH_REGISTRY.register()
class CountingBlurTeacher(BoxBlurTeacher):
    """:class:`BoxBlurTeacher` that counts the images it restored (``CountingBlurTeacher.images``)."""
    images = 0

    def forward(self, x):
        CountingBlurTeacher.images += len(x)
        return super().forward(x)


def test_teacher_a_is_measured_once_at_start_up(image_pairs, good_teachers, basicsr_log):
    from basicsr.data import build_dataloader, build_dataset

    opt = _kd_only(_options(image_pairs, good_teachers))
    opt['network_teacher_a'] = {'type': 'CountingBlurTeacher'}
    opt['val']['metrics']['ssim'] = {'type': 'calculate_ssim', 'crop_border': 0, 'test_y_channel': False}
    CountingBlurTeacher.images = 0
    model = build_model(opt)
    assert CountingBlurTeacher.images == 2  # each validation image once: its metrics and the check's PSNR
    val_set = build_dataset(opt['datasets']['val'])
    model.validation(build_dataloader(val_set, opt['datasets']['val']), 1, None, False)
    assert CountingBlurTeacher.images == 2  # the validation scores the student only
    lines = [line for line in basicsr_log if line.startswith('Teacher A on generated_val')]
    assert len(lines) == 1 and 'psnr: ' in lines[0] and 'ssim: ' in lines[0]
    assert model.teacher_scores['teacher_a'] > model.teacher_scores['input'] + 1
    assert any(line.startswith('Validation generated_val') for line in basicsr_log)

import itertools
from functools import partial

import pytest
import torch
import torch.nn.functional as F
from basicsr.losses import build_loss

import slkd_basicsr  # noqa: F401  (registration)
from slkd_basicsr.losses.nss_loss import BRISQUEFeatureLoss, PIQEFeatureLoss

LOSSES = [BRISQUEFeatureLoss, PIQEFeatureLoss]
# non-default options that change the computation path
VARIANTS = LOSSES + [
    partial(BRISQUEFeatureLoss, shape='interp', padding='zero'),
    partial(PIQEFeatureLoss, padding='reflect', block_size=8, segment_size=6, temperature=0.1),
]


def _teacher(shape, seed=0):
    """A structured feature map: smooth texture with a little noise."""
    gen = torch.Generator().manual_seed(seed)
    smooth = F.avg_pool2d(torch.randn(shape, generator=gen), 3, 1, 1) * 3
    return smooth + 0.2 * torch.randn(shape, generator=gen)


@pytest.mark.parametrize('loss_cls', VARIANTS)
@pytest.mark.parametrize('name, student', [
    ('constant', torch.full((2, 3, 8, 8), 3.0)),
    ('zeros', torch.zeros(2, 3, 8, 8)),
    ('tiny 4x4', torch.randn(2, 3, 4, 4)),
    ('around 1e4', 1e4 + 1e4 * torch.randn(2, 3, 8, 8)),
    ('bfloat16', torch.randn(2, 3, 8, 8).bfloat16()),
    ('float16', torch.randn(2, 3, 8, 8).half()),
])
def test_finite_value_and_gradient(loss_cls, name, student):
    student = student.clone().requires_grad_()
    teacher = _teacher(student.shape).to(student.dtype)
    for teacher_map in (teacher, student.detach()):
        loss = loss_cls()([student], [teacher_map])
        student.grad = None
        loss.backward()
        assert loss.dtype == torch.float32 and torch.isfinite(loss), name
        assert torch.isfinite(student.grad).all(), name


@pytest.mark.parametrize('loss_cls', VARIANTS)
def test_zero_when_student_equals_teacher(loss_cls):
    feats = [_teacher((2, 5, 16, 16)), _teacher((2, 7, 8, 6), seed=1)]
    # student and teacher maps are stacked into one batch, whose kernels may round samples differently
    assert loss_cls()(feats, [f.clone() for f in feats]).item() == pytest.approx(0.0, abs=1e-9)
    assert loss_cls()(feats, [_teacher((2, 5, 16, 16), 2), feats[1]]).item() > 0.0


def test_statistics_are_per_sample():
    """The student's and the teacher's maps are stacked into one call: each sample's statistics must not depend on
    what else is in the batch, or L_NC / L_ET would mix the two."""
    maps = _teacher((4, 3, 16, 16))
    brisque, piqe = BRISQUEFeatureLoss(), PIQEFeatureLoss()
    for statistic in (lambda x: brisque.statistics([x])[0], piqe.block_maps):
        together = statistic(maps)
        alone = torch.cat([statistic(maps[i:i + 1]) for i in range(4)])
        torch.testing.assert_close(together, alone, rtol=1e-5, atol=1e-6)


def test_brisque_levels_computed_together_equal_levels_alone():
    """L_NC computes the maps of equal shape at any scale in one call (the 16 x 16 level's half scale with the
    8 x 8 level): each level's statistics and gradient must be those of the level alone."""
    levels = [_teacher((2, 3, 16, 16)).requires_grad_(), _teacher((1, 3, 8, 8)).requires_grad_(),
              _teacher((2, 5, 8, 8)).requires_grad_()]
    loss = BRISQUEFeatureLoss()
    together = loss.statistics(levels)
    alone = [loss.statistics([level])[0] for level in levels]
    assert [t.shape[-1] for t in together] == [36, 36, 36]
    for t, a in zip(together, alone):
        torch.testing.assert_close(t, a, rtol=1e-5, atol=1e-6)
    weights = [torch.randn_like(t) for t in together]
    grads_together = torch.autograd.grad(sum((w * t).sum() for w, t in zip(weights, together)), levels)
    grads_alone = torch.autograd.grad(sum((w * a).sum() for w, a in zip(weights, alone)), levels)
    for g_t, g_a in zip(grads_together, grads_alone):
        torch.testing.assert_close(g_t, g_a, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize('loss_cls', VARIANTS)
def test_gradcheck_float64(loss_cls):
    student = torch.randn(1, 2, 8, 8, dtype=torch.float64, requires_grad=True)
    teacher = _teacher((1, 2, 8, 8)).double()
    loss_fn = loss_cls()
    assert torch.autograd.gradcheck(lambda s: loss_fn([s], [teacher]), (student, ), eps=1e-6, atol=1e-5, fast_mode=True)


@pytest.mark.parametrize('loss_cls, factor', [(BRISQUEFeatureLoss, 10), (PIQEFeatureLoss, 4)])
def test_adam_pulls_a_random_student_to_the_teacher(loss_cls, factor):
    torch.manual_seed(0)
    teacher = _teacher((2, 4, 16, 16))
    student = torch.randn(2, 4, 16, 16, requires_grad=True)
    loss_fn = loss_cls()
    optimizer = torch.optim.Adam([student], lr=0.1)
    start = loss_fn([student], [teacher]).item()
    for _ in range(50):
        optimizer.zero_grad()
        loss_fn([student], [teacher]).backward()
        optimizer.step()
    assert loss_fn([student], [teacher]).item() < start / factor


@pytest.mark.parametrize('loss_type', ['BRISQUEFeatureLoss', 'PIQEFeatureLoss'])
def test_build_loss_weight_and_reductions(loss_type):
    student = [torch.randn(2, 3, 16, 16), torch.randn(2, 6, 8, 8)]
    teacher = [_teacher(s.shape) for s in student]
    per_item = build_loss({'type': loss_type, 'reduction': 'none'})(student, teacher)
    assert per_item.shape == (2, 2)
    mean = build_loss({'type': loss_type, 'loss_weight': 0.1})(student, teacher)
    total = build_loss({'type': loss_type, 'reduction': 'sum'})(student, teacher)
    assert mean.item() == pytest.approx(0.1 * per_item.mean().item(), rel=1e-5)
    assert total.item() == pytest.approx(per_item.sum().item(), rel=1e-5)


@pytest.mark.parametrize('loss_cls', LOSSES)
def test_mismatched_inputs_and_options_raise(loss_cls):
    with pytest.raises(ValueError, match='one student map per teacher map'):
        loss_cls()([torch.randn(1, 2, 8, 8)], [])
    with pytest.raises(ValueError, match='SCM'):
        loss_cls()([torch.randn(1, 2, 8, 8)], [torch.randn(1, 3, 8, 8)])
    with pytest.raises(ValueError, match='reduction'):
        loss_cls(reduction='max')
    with pytest.raises(ValueError, match='padding'):
        loss_cls(padding='circular')


def test_piqe_loss_focuses_on_teacher_active_blocks():
    teacher = torch.zeros(1, 1, 16, 16)
    teacher[..., :8] = _teacher((1, 1, 16, 8))  # left half textured, right half flat
    loss_fn = PIQEFeatureLoss(inactive_weight=0.0)
    student_left = teacher.clone()
    student_left[..., :8] = torch.randn(1, 1, 16, 8)
    student_right = teacher.clone()
    student_right[..., 8:] = 0.3 * torch.randn(1, 1, 16, 8)
    assert loss_fn([student_left], [teacher]) > loss_fn([student_right], [teacher])


@pytest.mark.parametrize('loss_cls', LOSSES)
def test_sampled_channels_estimate_the_all_channel_loss_without_bias(loss_cls):
    student = [torch.randn(2, 4, 16, 16), torch.randn(2, 3, 8, 8)]
    teacher = [_teacher(s.shape, seed=k) for k, s in enumerate(student)]
    full = loss_cls(sample_channels=0, reduction='none')(student, teacher)
    # the mean over every 2-channel subset of the first level is the all-channel loss
    subsets = list(itertools.combinations(range(4), 2))
    subset_losses = [
        loss_cls(sample_channels=0, reduction='none')([student[0][:, list(c)]], [teacher[0][:, list(c)]])[0]
        for c in subsets
    ]
    torch.testing.assert_close(torch.stack(subset_losses).mean(0), full[0])
    # a sampled call compares one such subset; a level with no more channels than asked is compared whole
    torch.manual_seed(0)
    sampled = loss_cls(sample_channels=2, reduction='none')(student, teacher)
    assert any(torch.allclose(sampled[0], loss) for loss in subset_losses)
    assert torch.allclose(loss_cls(sample_channels=3, reduction='none')(student, teacher)[1], full[1])
    with pytest.raises(ValueError, match='sample_channels'):
        loss_cls(sample_channels=-1)

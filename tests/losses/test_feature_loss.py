import torch
from basicsr.losses import build_loss

import slkd_basicsr  # noqa: F401  (registration)


def test_feature_l1_loss_compares_raw_maps():
    student = [torch.randn(2, 3, 8, 8, requires_grad=True), torch.randn(2, 5, 4, 4)]
    teacher = [torch.randn(2, 3, 8, 8), torch.randn(2, 5, 4, 4)]
    loss = build_loss({'type': 'FeatureL1Loss', 'loss_weight': 0.1})(student, teacher)
    expected = 0.1 * torch.stack([(s - t).abs().mean() for s, t in zip(student, teacher)]).mean()
    torch.testing.assert_close(loss, expected)
    loss.backward()
    assert student[0].grad is not None and (student[0].grad != 0).all()
    assert build_loss({'type': 'FeatureL1Loss'})(teacher, teacher).item() == 0.0


def test_feature_l1_loss_reductions_are_per_level_and_sample():
    student = [torch.randn(2, 3, 8, 8), torch.randn(2, 5, 4, 4)]
    teacher = [torch.randn(2, 3, 8, 8), torch.randn(2, 5, 4, 4)]
    per_item = build_loss({'type': 'FeatureL1Loss', 'reduction': 'none'})(student, teacher)
    expected = torch.stack([(s - t).abs().mean(dim=(1, 2, 3)) for s, t in zip(student, teacher)])
    torch.testing.assert_close(per_item, expected)
    total = build_loss({'type': 'FeatureL1Loss', 'reduction': 'sum', 'loss_weight': 2.0})(student, teacher)
    torch.testing.assert_close(total, 2.0 * expected.sum())

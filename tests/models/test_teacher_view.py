"""The geometry of what the teachers see: samples, the centred crop, and the same region of the student's maps."""
import pytest
import torch

from slkd_basicsr.models.teacher_view import CROP_ALIGN, TeacherView, teacher_samples


@pytest.mark.parametrize('share, batch, samples', [(None, 4, 4), (1, 4, 1), (6, 4, 4), (0.25, 8, 2), (0.25, 2, 1),
                                                   (0.5, 4, 2)])
def test_teacher_batch_is_a_count_or_a_share_of_the_batch(share, batch, samples):
    assert teacher_samples(share, batch) == samples


def test_the_crop_is_centred_on_the_alignment_grid_and_cuts_every_map_alike():
    x = torch.arange(4 * 128 * 96, dtype=torch.float32).view(4, 1, 128, 96)
    view = TeacherView.of_batch(x, 2, 64)
    assert CROP_ALIGN == 16 and view.box == (32, 16, 64, 64)  # (128 - 64) / 2 = 32; (96 - 64) / 2 = 16
    torch.testing.assert_close(view(x), x[:2, :, 32:96, 16:80])
    # a map at a quarter of the input's resolution (a tap two levels down) is cut at the same place
    tap = torch.nn.functional.avg_pool2d(x, 4)
    torch.testing.assert_close(view(tap), tap[:2, :, 8:24, 4:20])
    torch.testing.assert_close(view(tap), torch.nn.functional.avg_pool2d(view(x), 4))


def test_a_crop_can_be_a_share_of_the_patch_side_rounded_up_to_the_alignment():
    assert TeacherView.of_batch(torch.rand(1, 3, 128, 64), None, 0.5).box == (32, 16, 64, 32)
    assert TeacherView.of_batch(torch.rand(1, 3, 128, 64), None, 0.75).box == (16, 0, 96, 48)
    # 3/4 of 32 px is 24, rounded up to 32: the whole patch, no crop
    assert TeacherView.of_batch(torch.rand(1, 3, 32, 32), None, 0.75).box is None


def test_a_region_that_falls_between_map_pixels_is_rounded_outward():
    view = TeacherView(1, (8, 8, 20, 20), (64, 64))
    assert view(torch.zeros(1, 1, 8, 8)).shape[-2:] == (3, 3)  # pixels 8..28 of 64 -> map rows 1..3.5 -> 1..4


@pytest.mark.parametrize('side', [None, 48, 64])
def test_no_crop_when_the_side_is_not_smaller_than_the_patch(side):
    x = torch.rand(2, 3, 48, 48)
    view = TeacherView.of_batch(x, None, side)
    assert view.box is None and view(x) is x

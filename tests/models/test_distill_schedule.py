"""``distill.anneal_iters``: the distillation terms fade out by a half cosine, and the last steps fit the GT alone."""
import pytest
from basicsr.models import build_model

from helpers import in_process, slkd_options, train_batch
from slkd_basicsr.models.distill_schedule import distill_weight

TERMS = ('l_kd', 'l_nc', 'l_et')


def test_weight_is_constant_without_annealing_and_a_half_cosine_with_it():
    assert [distill_weight(it, None) for it in (1, 500, 10 ** 6)] == [1.0, 1.0, 1.0]
    assert distill_weight(0, 8) == 1.0
    assert distill_weight(4, 8) == pytest.approx(0.5)
    assert distill_weight(2, 8) == pytest.approx(0.5 + 0.5 ** 1.5)
    assert distill_weight(8, 8) == pytest.approx(0.0) and distill_weight(9, 8) == pytest.approx(0.0)


def _step(image_pairs, teachers, anneal_iters, current_iter, pixel_weight=1.0):
    opt = in_process(slkd_options(image_pairs, teachers))
    opt['distill']['anneal_iters'] = anneal_iters
    opt['train']['pixel_opt']['loss_weight'] = pixel_weight
    model = build_model(opt)
    model.feed_data(train_batch(opt))
    model.optimize_parameters(current_iter)
    return model, model.get_current_log()


def test_terms_are_scaled_by_the_weight_of_the_iteration(image_pairs, teachers):
    """Same seed, same batch: halfway through the annealing every term is half the constant-weight run's."""
    _, constant = _step(image_pairs, teachers, None, 4)
    _, annealed = _step(image_pairs, teachers, 8, 4)
    assert 'distill_weight' not in constant and annealed['distill_weight'] == pytest.approx(0.5)
    assert annealed['l_pix'] == pytest.approx(constant['l_pix'])
    for term in TERMS:
        assert constant[term] > 0
        assert annealed[term] == pytest.approx(0.5 * constant[term], rel=1e-5), term


def test_after_annealing_the_terms_send_no_gradient_to_the_student(image_pairs, teachers):
    """With the pixel loss at weight 0, only the distillation terms could move the student: at anneal_iters
    they do not any more, one iteration earlier they still do."""
    for current_iter, moved in ((7, True), (8, False)):
        model, _ = _step(image_pairs, teachers, 8, current_iter, pixel_weight=0.0)
        grads = [p.grad.abs().sum().item() for p in model.net_g.parameters() if p.grad is not None]
        assert (sum(grads) > 0) is moved, current_iter

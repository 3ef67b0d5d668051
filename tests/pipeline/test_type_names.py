"""An optimiser or scheduler BasicSR 1.4.2 does not know is named with the ones it supports."""
import pytest
from basicsr.models import build_model

from helpers import in_process, slkd_options


@pytest.mark.parametrize('section, typo, message', [
    ('optim_g', 'AdamW', r"No optimizer named 'AdamW' in BasicSR 1.4.2's BaseModel. Did you mean: Adam\? "
     r'Supported: Adam. Check the type of train.optim_g'),
    ('scheduler', 'CosineAnnealingLR', "No scheduler named 'CosineAnnealingLR' .* "
     'Did you mean: CosineAnnealingRestartLR'),
], ids=['optim_g', 'scheduler'])
def test_unknown_optimizer_or_scheduler_names_supported_ones(image_pairs, teachers, section, typo, message):
    opt = slkd_options(image_pairs, teachers)
    opt['train'][section]['type'] = typo
    with pytest.raises(NotImplementedError, match=message):
        build_model(in_process(opt))

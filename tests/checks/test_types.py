"""An unknown ``type`` in any options section is a clear error with close names, before training starts."""
import numpy as np
import pytest
from basicsr.data import build_dataset
from basicsr.metrics import calculate_metric
from basicsr.models import build_model

from helpers import in_process, run_entry, slkd_options, write_options
from slkd_basicsr.checks.types import UnknownTypeError, check_option_types

# (keys down to the misspelt type, the typo, the message it must give)
REGISTRY_TYPOS = [
    (('model_type', ), 'SLKDModle', "No model named 'SLKDModle' in BasicSR's model registry. Did you mean: SLKDModel"),
    (('network_g', 'type'), 'Restormr', "No arch named 'Restormr' in BasicSR's arch registry. Did you mean: Restormer"),
    (('network_teacher_a', 'type'), 'restormer', 'Did you mean: Restormer'),
    (('network_teacher_b', 'type'), 'Restormer2', 'Did you mean: Restormer'),
    (('train', 'pixel_opt', 'type'), 'L1Los', "No loss named 'L1Los' .* Did you mean: L1Loss"),
    (('train', 'kd_opt', 'type'), 'ImageKLLos', 'Did you mean: ImageKLLoss'),
    (('train', 'nc_opt', 'type'), 'BRISQUELoss', 'Did you mean: BRISQUEFeatureLoss'),
    (('train', 'et_opt', 'type'), 'PIQELoss', 'Did you mean: PIQEFeatureLoss'),
    (('datasets', 'train', 'type'), 'PairedImageDatset', "No dataset named .* Did you mean: PairedImageDataset"),
    (('datasets', 'val', 'type'), 'PairedDataset', 'Did you mean: PairedImageDataset'),
    (('val', 'metrics', 'psnr', 'type'), 'calculate_psnrr', "No metric named .* Did you mean: calculate_psnr"),
]


def _misspelt(image_pairs, teachers, keys, typo):
    opt = slkd_options(image_pairs, teachers)
    section = opt
    for key in keys[:-1]:
        section = section[key]
    section[keys[-1]] = typo
    return opt


def _build(opt, keys):
    """Build what ``keys`` configures the way BasicSR's pipeline does."""
    if keys[0] == 'datasets':
        return build_dataset({**opt['datasets'][keys[1]], 'phase': keys[1], 'scale': 1})
    if keys[0] == 'val':
        img = np.zeros((8, 8, 3), dtype=np.uint8)
        return calculate_metric({'img': img, 'img2': img}, opt['val']['metrics'][keys[2]])
    return build_model(in_process(opt))


@pytest.mark.parametrize('keys, typo, message', REGISTRY_TYPOS, ids=['.'.join(keys) for keys, _, _ in REGISTRY_TYPOS])
def test_unknown_registry_type_names_close_types(image_pairs, teachers, keys, typo, message):
    opt = _misspelt(image_pairs, teachers, keys, typo)
    with pytest.raises(UnknownTypeError, match=message) as raised:
        _build(opt, keys)
    assert isinstance(raised.value, KeyError)
    assert str(raised.value).startswith('No ') and 'Registered: ' in str(raised.value)
    with pytest.raises(UnknownTypeError, match=message):
        check_option_types(opt)


def test_unknown_metric_stops_train_entry_point_before_training(image_pairs, teachers, tmp_path):
    keys, typo, message = REGISTRY_TYPOS[-1]
    opt_path = write_options(_misspelt(image_pairs, teachers, keys, typo), str(tmp_path / 'typo.yml'))
    proc = run_entry('slkd_basicsr.tools.train', ['-opt', opt_path], str(tmp_path))
    assert proc.returncode != 0
    assert proc.stderr.startswith('slkd-train: No metric named'), proc.stderr
    assert 'Did you mean: calculate_psnr' in proc.stderr
    assert 'Start training' not in proc.stdout + proc.stderr
    assert not (tmp_path / 'experiments').exists()

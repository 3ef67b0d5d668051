"""BasicSR's training states found in the experiment, read onto the CPU safely, written atomically."""
import os
from types import SimpleNamespace

import pytest
import torch

from slkd_basicsr.compat import resume
from slkd_basicsr.compat.resume import newest_readable_state, training_states
from slkd_basicsr.errors import CheckpointError


def test_training_states_are_newest_first_without_partial_files(tmp_path):
    for name in ('10.state', '20.state', '.30.state.abc.tmp', 'notes.txt'):
        (tmp_path / name).write_bytes(b'')
    assert training_states(str(tmp_path)) == [str(tmp_path / '20.state'), str(tmp_path / '10.state')]
    assert training_states(str(tmp_path / 'missing')) == []


def test_auto_resume_refuses_when_no_state_reads(tmp_path):
    (tmp_path / '6.state').write_bytes(b'')
    torch.save({'params': {}}, str(tmp_path / '3.state'))
    opt = {'path': {'training_states': str(tmp_path)}, 'num_gpu': 0, 'rank': 0}
    with pytest.raises(CheckpointError, match=r"(?s)none of the 2 training states.*6.state.*empty \(0 bytes\)"
                                              r".*3.state.*no training state: it lacks epoch, iter"):
        newest_readable_state(opt)


def test_optimizers_move_a_cpu_loaded_state_to_their_parameters_device():
    """Why the state can be loaded onto the CPU: load_state_dict puts moments on the parameters' device (meta
    stands in for a GPU here), the step count stays where torch keeps it."""
    param = torch.nn.Parameter(torch.ones(3))
    saved = torch.optim.Adam([param], lr=0.1)
    param.grad = torch.ones(3)
    saved.step()
    on_device = torch.nn.Parameter(torch.ones(3, device='meta'))
    optimizer = torch.optim.Adam([on_device], lr=0.1)
    optimizer.load_state_dict(saved.state_dict())
    moments = optimizer.state[on_device]
    assert moments['exp_avg'].device.type == moments['exp_avg_sq'].device.type == 'meta'


def test_compat_alone_saves_and_reads_basicsr_state_and_the_model_entries(tmp_path):
    """Without the plugin's pipeline: BasicSR's entries and the model's extra_training_state(), no random states;
    the state read back sets path.resume_state (BasicSR's check_resume then points the networks at models/)."""
    model = SimpleNamespace(opt={'rank': 0, 'path': {'training_states': str(tmp_path)}}, optimizers=[], schedulers=[],
                            extra_training_state=lambda: {'scm': {'w': torch.ones(2)}})
    resume.save_training_state(model, 1, 4)
    resume.save_training_state(model, 1, -1)  # BasicSR's final save: no state
    assert os.listdir(tmp_path) == ['4.state']
    opt = {'auto_resume': True, 'rank': 0, 'path': {'training_states': str(tmp_path), 'models': str(tmp_path)}}
    state = resume.load_resume_state(opt)
    assert sorted(state) == ['epoch', 'iter', 'optimizers', 'schedulers', 'scm']
    assert opt['path']['resume_state'] == str(tmp_path / '4.state') and 'resume_position' not in opt

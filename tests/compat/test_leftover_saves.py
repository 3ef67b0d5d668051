"""The temporary file of a checkpoint save killed midway is found and removed, and only it (the next run of the
experiment removes it: tests/pipeline/test_experiment_folder.py)."""
import os

from helpers import killed_save
from slkd_basicsr.compat import checkpoints


def test_only_temporary_files_of_dead_or_earlier_saves_are_removed(tmp_path):
    dead = killed_save(tmp_path / 'net_g_4.pth')
    live = checkpoints.temporary_path(str(tmp_path / 'net_g_8.pth'))  # a save of this process, now
    older = checkpoints.temporary_path(str(tmp_path / '8.state'))
    others = ['net_g_4.pth', '.net_g_4.pth.tmp', '.net_g_4.pth.123.nothex00.tmp', 'x.12.abcdef01.tmp']
    for name in [live, older, *others]:
        (tmp_path / name).write_bytes(b'x')
    os.symlink(tmp_path / 'net_g_4.pth', tmp_path / '.link.pth.1.abcdef01.tmp')  # the pattern, but not a plain file
    past = checkpoints.PROCESS_START - 60
    os.utime(older, (past, past))
    removed = checkpoints.remove_stale_temporary_files(str(tmp_path))
    assert removed == sorted(os.path.basename(p) for p in (dead, older))
    assert sorted(os.listdir(tmp_path)) == sorted([os.path.basename(live), '.link.pth.1.abcdef01.tmp', *others])
    assert checkpoints.remove_stale_temporary_files(str(tmp_path / 'missing')) == []


def test_a_save_names_its_temporary_file_as_the_clean_up_expects(tmp_path, monkeypatch):
    names = []
    replace = os.replace

    def record(src, dst):
        names.append(os.path.basename(src))
        replace(src, dst)

    monkeypatch.setattr(os, 'replace', record)
    checkpoints.atomic_torch_save({'params': {}}, str(tmp_path / 'net_g_2.pth'))
    [name] = names
    match = checkpoints.TEMPORARY_NAME.fullmatch(name)
    assert match and match['final'] == 'net_g_2.pth' and int(match['pid']) == os.getpid()

import os

import pytest

from kmtalk_cli.atomic import atomic_output, check_output_path
from kmtalk_cli.errors import OutputError


def test_success_moves_file_into_place_and_leaves_no_temp(tmp_path):
    target = tmp_path / "out.txt"
    with atomic_output(target) as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".txt"
        tmp.write_text("done")
    assert target.read_text() == "done"
    assert os.listdir(tmp_path) == ["out.txt"]


def test_failure_keeps_existing_file_and_removes_temp(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("precious")
    with pytest.raises(KeyboardInterrupt):
        with atomic_output(target, force=True) as tmp:
            tmp.write_text("half")
            raise KeyboardInterrupt
    assert target.read_text() == "precious"
    assert os.listdir(tmp_path) == ["out.txt"]


def test_existing_output_needs_force(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("precious")
    with pytest.raises(OutputError, match="--force"):
        check_output_path(target)
    assert check_output_path(target, force=True) == target


def test_missing_directory_and_directory_target(tmp_path):
    with pytest.raises(OutputError, match="does not exist"):
        check_output_path(tmp_path / "nope" / "out.mp4")
    with pytest.raises(OutputError, match="is a directory"):
        check_output_path(tmp_path)


def test_unwritable_directory(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):  # root ignores permissions; /proc refuses new files even to root
            locked = "/proc"
        with pytest.raises(OutputError, match="(not writable|Cannot write)"):
            with atomic_output(os.path.join(locked, "out.txt")) as tmp:
                tmp.write_text("x")
    finally:
        (tmp_path / "locked").chmod(0o700)


def test_outputs_get_umask_permissions_even_when_the_writer_replaces_the_file(tmp_path):
    target = tmp_path / "out.bin"
    old = os.umask(0o022)
    try:
        with atomic_output(target) as tmp:
            tmp.unlink()  # as safetensors does: a fresh file under the temporary name
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT, 0o600)
            os.write(fd, b"x")
            os.close(fd)
    finally:
        os.umask(old)
    assert target.stat().st_mode & 0o777 == 0o644

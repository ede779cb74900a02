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


def test_transaction_lands_all_outputs_at_its_end(tmp_path):
    from kmtalk_cli.atomic import transaction

    with transaction():
        for name in ("a.npy", "b.json"):
            with atomic_output(tmp_path / name) as tmp:
                tmp.write_text(name)
            assert not (tmp_path / name).exists()  # staged, not yet in place
    assert sorted(os.listdir(tmp_path)) == ["a.npy", "b.json"]


def test_transaction_interrupted_keeps_every_old_file(tmp_path):
    from kmtalk_cli.atomic import atomic_directory, transaction

    (tmp_path / "a.npy").write_text("old a")
    (tmp_path / "seq").mkdir()
    (tmp_path / "seq" / "f.obj").write_text("old frame")
    with pytest.raises(KeyboardInterrupt):
        with transaction():
            with atomic_output(tmp_path / "a.npy", force=True) as tmp:
                tmp.write_text("new a")
            with atomic_directory(tmp_path / "seq", force=True) as folder:
                (folder / "g.obj").write_text("new frame")
            with atomic_output(tmp_path / "c.mp4", force=True) as tmp:
                tmp.write_text("half a video")
                raise KeyboardInterrupt
    assert (tmp_path / "a.npy").read_text() == "old a"
    assert os.listdir(tmp_path / "seq") == ["f.obj"]
    assert sorted(os.listdir(tmp_path)) == ["a.npy", "seq"]  # no temporaries left


def test_transaction_replaces_folders_and_files_with_force(tmp_path):
    from kmtalk_cli.atomic import atomic_directory, transaction

    (tmp_path / "a.npy").write_text("old")
    (tmp_path / "seq").mkdir()
    (tmp_path / "seq" / "old.obj").write_text("old")
    with transaction():
        with atomic_output(tmp_path / "a.npy", force=True) as tmp:
            tmp.write_text("new")
        with atomic_directory(tmp_path / "seq", force=True) as folder:
            (folder / "new.obj").write_text("new")
    assert (tmp_path / "a.npy").read_text() == "new" and os.listdir(tmp_path / "seq") == ["new.obj"]
    assert sorted(os.listdir(tmp_path)) == ["a.npy", "seq"]


def test_a_failed_rename_puts_the_earlier_outputs_back(tmp_path, monkeypatch):
    from kmtalk_cli import atomic

    (tmp_path / "a.txt").write_text("old a")
    real = os.replace

    def flaky(src, dst):
        if str(dst).endswith("b.txt"):
            raise OSError(28, "No space left on device")
        return real(src, dst)

    monkeypatch.setattr(atomic.os, "replace", flaky)
    with pytest.raises(OutputError, match="disk is full"):
        with atomic.transaction():
            for name in ("a.txt", "b.txt"):
                with atomic_output(tmp_path / name, force=True) as tmp:
                    tmp.write_text("new")
    assert (tmp_path / "a.txt").read_text() == "old a"
    assert os.listdir(tmp_path) == ["a.txt"]


def test_output_rule_suffix_length_and_a_file_as_folder(tmp_path):
    with pytest.raises(OutputError, match=r"must end in \.npy"):
        check_output_path(tmp_path / "take.motion", suffixes=(".npy",), what="a motion")
    assert check_output_path(tmp_path / "TAKE.NPY", suffixes=(".npy",)) == tmp_path / "TAKE.NPY"
    with pytest.raises(OutputError, match="255 bytes"):
        check_output_path(tmp_path / ("x" * 256))
    (tmp_path / "plain").write_text("")
    with pytest.raises(OutputError, match="is a file, not a directory"):
        check_output_path(tmp_path / "plain" / "deeper" / "x.npy")


def test_writer_os_errors_become_one_sentence(tmp_path):
    with pytest.raises(OutputError, match="disk is full"):
        with atomic_output(tmp_path / "x.bin") as tmp:
            raise OSError(28, "No space left on device")
    assert os.listdir(tmp_path) == []

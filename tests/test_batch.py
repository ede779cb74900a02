"""kmtalk_cli.batch: input expansion (files, directories, globs, manifests) and the runner
(skipping finished items, carrying on past failures, worker processes)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from kmtalk_cli.batch import BatchItem, expand_inputs, read_manifest, run_batch, run_inputs
from kmtalk_cli.errors import KmtalkError
from kmtalk_cli.progress import ProgressMode, Reporter


def touch(folder: Path, *names: str) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / n for n in names]
    for p in paths:
        p.write_text("x")
    return paths


def test_directories_globs_files_and_manifests(tmp_path):
    b, a, _ = touch(tmp_path / "clips", "b.wav", "a.WAV", "notes.md")
    touch(tmp_path / "clips" / "deep", "c.wav")
    manifest = tmp_path / "list.txt"
    manifest.write_text("# lines\nclips/deep/c.wav\n\n" + str(a) + "\n")
    one = expand_inputs([a], (".wav",))
    assert one.batch is False and [i.path for i in one.items] == [a]
    folder = expand_inputs([tmp_path / "clips"], (".wav",))
    assert folder.batch and [i.path.name for i in folder.items] == ["a.WAV", "b.wav"]
    pattern = expand_inputs([str(tmp_path / "clips" / "**" / "*.wav")], (".wav",))
    assert [i.path.name for i in pattern.items] == ["b.wav", "c.wav"]
    listed = expand_inputs([manifest, b], (".wav",))
    assert [i.path.name for i in listed.items] == ["c.wav", "a.WAV", "b.wav"]  # in order, each once
    assert expand_inputs([a, a], (".wav",)).items == (BatchItem(a),)


def test_csv_and_tsv_manifests_carry_transcripts(tmp_path):
    touch(tmp_path, "x.wav", "y.wav")
    (tmp_path / "m.csv").write_text('path,transcript\nx.wav,"hello, world"\ny.wav,\n')
    (tmp_path / "m.tsv").write_text("y.wav\tgood day\n")
    assert read_manifest(tmp_path / "m.csv") == [BatchItem(tmp_path / "x.wav", "hello, world"), BatchItem(tmp_path / "y.wav")]
    assert read_manifest(tmp_path / "m.tsv") == [BatchItem(tmp_path / "y.wav", "good day")]


def test_sidecars_and_rendered_videos_are_not_inputs(tmp_path):
    from kmtalk_cli.batch import AUDIO_SUFFIXES

    touch(tmp_path, "take.npy", "take.keys.npz", "take.head.npz", "other.npz", "take.wav", "take.mp4", ".take.part.wav")
    assert [i.path.name for i in expand_inputs([tmp_path], (".npy", ".npz")).items] == ["other.npz", "take.npy"]
    assert [i.path.name for i in expand_inputs([tmp_path], AUDIO_SUFFIXES).items] == ["take.wav"]


@pytest.mark.parametrize(
    ("spec", "message"),
    [("missing.wav", "does not exist"), ("empty", "holds no .wav files"), ("*.flac", "No .wav files match"), ("blank.txt", "lists no files")],
)
def test_bad_inputs_say_what_is_wrong(tmp_path, monkeypatch, spec, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    (tmp_path / "blank.txt").write_text("\n# nothing\n")
    with pytest.raises(KmtalkError, match=message):
        expand_inputs([spec], (".wav",))


@dataclass(frozen=True)
class CopyJob:
    """Upper-cases each input into OUT/NAME.out; inputs containing 'bad' fail. Counts setups in a file."""

    out: Path
    setups: Path

    def outputs(self, item: BatchItem) -> list[Path]:
        return [self.out / (item.path.stem + ".out")]

    def setup(self) -> str:
        with self.setups.open("a") as fh:
            fh.write("setup\n")
        return "state"

    def run(self, item: BatchItem, state: str, force: bool) -> list[Path]:
        text = item.path.read_text()
        if "bad" in text:
            raise KmtalkError(f"{item.path.name} is bad.")
        target = self.outputs(item)[0]
        target.write_text(text.upper() + state)
        return [target]


def _files(tmp_path: Path, n: int = 4) -> list[BatchItem]:
    items = []
    for i in range(n):
        path = tmp_path / f"in{i}.txt"
        path.write_text("bad" if i == 1 else f"line {i}")
        items.append(BatchItem(path))
    return items


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_failure_is_reported_and_the_rest_go_on(tmp_path, jobs):
    items = _files(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    job = CopyJob(out, tmp_path / "setups.log")
    summary = run_batch(job, items, reporter=Reporter(ProgressMode.none), jobs=jobs)
    assert [r.status for r in summary.results] == ["ok", "failed", "ok", "ok"]
    assert summary.results[1].message == "in1.txt is bad."
    assert (out / "in3.out").read_text() == "LINE 3state"
    # The model (setup) is loaded once per worker, not once per file.
    assert len((tmp_path / "setups.log").read_text().split()) == jobs


def test_an_os_error_fails_only_its_file(tmp_path):
    """A folder that vanishes under one file (an OSError, not a KmtalkError) fails that file alone."""
    items = _files(tmp_path)
    items[1].path.write_text("line 1")
    out = tmp_path / "out"
    out.mkdir()
    job = CopyJob(out, tmp_path / "setups.log")
    items[2] = BatchItem(tmp_path / "gone" / "in2.txt")
    summary = run_batch(job, items, reporter=Reporter(ProgressMode.none), jobs=1)
    assert [r.status for r in summary.results] == ["ok", "ok", "failed", "ok"]
    assert "No such file or directory" in summary.results[2].message and "gone" in summary.results[2].message


def test_finished_items_are_skipped_unless_forced(tmp_path):
    items = _files(tmp_path, 3)
    out = tmp_path / "out"
    out.mkdir()
    job = CopyJob(out, tmp_path / "setups.log")
    (out / "in0.out").write_text("kept")
    summary = run_batch(job, items, reporter=Reporter(ProgressMode.none))
    assert [r.status for r in summary.results] == ["skipped", "failed", "ok"]
    assert (out / "in0.out").read_text() == "kept"
    forced = run_batch(job, items, reporter=Reporter(ProgressMode.none), force=True)
    assert [r.status for r in forced.results] == ["ok", "failed", "ok"]
    assert (out / "in0.out").read_text() == "LINE 0state"


def test_one_plain_file_raises_its_error(tmp_path):
    items = _files(tmp_path, 2)
    job = CopyJob(tmp_path, tmp_path / "setups.log")
    inputs = expand_inputs([items[1].path], (".txt",))
    with pytest.raises(KmtalkError, match="in1.txt is bad"):
        run_inputs(job, inputs, reporter=Reporter(ProgressMode.none))


def test_two_inputs_writing_one_file_are_refused(tmp_path):
    a, b = touch(tmp_path / "x", "same.txt")[0], touch(tmp_path / "y", "same.txt")[0]
    job = CopyJob(tmp_path, tmp_path / "setups.log")
    with pytest.raises(KmtalkError, match="would both write"):
        run_inputs(job, expand_inputs([a, b], (".txt",)), reporter=Reporter(ProgressMode.none))

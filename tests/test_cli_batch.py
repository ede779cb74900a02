"""Batches through the CLI: `animate`, `render` and `export` over directories, globs and
manifests, a failing file that does not stop the rest, resuming, and `export -o -`."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from kmtalk_cli.alignment.espeak import synthesize
from kmtalk_cli.cli import app
from kmtalk_cli.face.template import bundled_template

runner = CliRunner()
LINES = {"dog": "the big brown dog sat on a warm mat", "fish": "five fish swam by"}


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clips")
    for name, text in LINES.items():
        speech = synthesize(text)
        sf.write(folder / f"{name}.wav", speech.samples, speech.sample_rate)
    (folder / "broken.wav").write_text("not audio")
    manifest = folder / "lines.csv"
    manifest.write_text("path,transcript\n" + "".join(f"{n}.wav,{t}\n" for n, t in LINES.items()) + "broken.wav,nothing\n")
    return folder


def test_animate_a_manifest_then_resume(clips, tmp_path):
    out = tmp_path / "out"
    first = runner.invoke(app, ["animate", str(clips / "lines.csv"), "-b", "rig", "-o", str(out)])
    assert first.exit_code == 1
    assert "broken.wav" in first.stderr and "1 of 3 files failed" in first.stderr
    assert sorted(p.name for p in out.glob("*.npy")) == ["dog.npy", "fish.npy"]
    # The manifest's transcript drove a forced alignment.
    assert '"method": "forced"' in (out / "dog.align.json").read_text()
    before = (out / "dog.npy").stat().st_mtime_ns
    again = runner.invoke(app, ["animate", str(clips / "dog.wav"), str(clips / "fish.wav"), "-b", "rig", "-o", str(out)])
    assert again.exit_code == 0 and "2 skipped" in again.stderr
    assert (out / "dog.npy").stat().st_mtime_ns == before
    forced = runner.invoke(app, ["animate", str(clips / "dog.wav"), str(clips / "fish.wav"), "-b", "rig", "-o", str(out), "--force"])
    assert forced.exit_code == 0 and "2 animated" in forced.stderr
    assert (out / "dog.npy").stat().st_mtime_ns != before


def test_batch_refuses_single_file_options(clips, tmp_path):
    result = runner.invoke(app, ["animate", str(clips), "-b", "rig", "--text", "hello", "-o", str(tmp_path)])
    assert result.exit_code == 1 and "apply to one input" in result.stderr


@pytest.fixture(scope="module")
def motions(tmp_path_factory):
    folder = tmp_path_factory.mktemp("motions")
    head = bundled_template()
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        wobble = rng.normal(scale=1e-4, size=(6, head.n_vertices, 3)).astype(np.float32)
        np.save(folder / f"{name}.npy", (head.vertices[None] + wobble).reshape(6, -1))
    np.save(folder / "bad.npy", np.zeros((6, 7), dtype=np.float32))
    np.savez(folder / "a.keys.npz", indices=np.arange(2))  # a sidecar, never an input
    return folder


def test_render_and_export_a_glob(motions, tmp_path):
    videos = runner.invoke(app, ["render", str(motions / "*.npy"), "-o", str(tmp_path / "v"), "--size", "64", "--renderer", "software", "-q"])
    assert videos.exit_code == 1 and "bad.npy" in videos.stderr
    assert sorted(p.name for p in (tmp_path / "v").iterdir()) == ["a.mp4", "b.mp4"]
    csvs = runner.invoke(app, ["export", str(motions), "--format", "arkit-csv", "-o", str(tmp_path / "c"), "-q"])
    assert csvs.exit_code == 1 and "1 of 3 files failed" in csvs.stderr
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == ["a.csv", "b.csv"]


def test_visemes_to_stdout(clips, tmp_path):
    aligned = runner.invoke(app, ["align", str(clips / "dog.wav"), "--text", LINES["dog"], "-o", str(tmp_path / "dog.align.json"), "-q"])
    assert aligned.exit_code == 0, aligned.stderr
    result = runner.invoke(app, ["export", str(tmp_path / "dog.align.json"), "--format", "visemes", "--visemes", "rhubarb", "-o", "-"])
    assert result.exit_code == 0, result.stderr
    rows = [line.split("\t") for line in result.stdout.splitlines()]
    assert len(rows) > 5 and all(len(r) == 2 for r in rows)
    assert [float(r[0]) for r in rows] == sorted(float(r[0]) for r in rows) and {r[1] for r in rows} <= set("ABCDEFGHX")
    assert not list(tmp_path.glob("*.tsv")) and not (tmp_path / "-").exists()
    refused = runner.invoke(app, ["export", str(tmp_path / "dog.align.json"), str(tmp_path / "dog.align.json"), "--format", "visemes", "-o", "-"])
    assert refused.exit_code == 1 and "stdout" in refused.stderr

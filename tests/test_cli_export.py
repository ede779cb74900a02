"""`kmtalk export` through Typer's CliRunner: each format once, and every bad input the issue names."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from kmtalk_cli.commands.export import export
from kmtalk_cli.export import FORMATS, export_motion
from kmtalk_cli.export.fit import DEFAULT_SMOOTHING
from kmtalk_cli.face.coarticulation import SpokenPhone, animate_phones
from kmtalk_cli.face.rig import build_rig

runner = CliRunner()
app = typer.Typer()
app.command()(export)


@app.callback()
def main() -> None:
    """A stand-in for kmtalk's app, so ``export`` is a subcommand as it is there."""


PHONES = [("SIL", 0.0, 0.2), ("M", 0.2, 0.3), ("AA", 0.3, 0.6), ("P", 0.6, 0.7), ("IY", 0.7, 1.0), ("SIL", 1.0, 1.2)]



@pytest.fixture(scope="module")
def speech(head):
    """A rig-made motion of 'mapy' (36 frames at 30 fps) as (T, V·3), the FaceFormer layout."""
    params = animate_phones([SpokenPhone(*p) for p in PHONES], 36, 30.0)
    return build_rig(head).pose(params).astype(np.float32).reshape(36, -1)


def invoke(*args):
    return runner.invoke(app, ["export", *[str(a) for a in args]])


def alignment_file(tmp_path, labels=None):
    phones = [[label, start, end] for (label, start, end) in PHONES]
    for i, label in (labels or {}).items():
        phones[i][0] = label
    path = tmp_path / "take.align.json"
    doc = {"format": "kmtalk-alignment", "version": 1, "backend": "textgrid", "method": "forced", "transcript": "mapy",
           "duration": 1.2, "source": None, "notes": [], "words": [["mapy", 0.2, 1.0]], "phones": phones}
    path.write_text(json.dumps(doc))
    return path


def test_arkit_csv_beside_the_motion(tmp_path, speech):
    np.save(tmp_path / "take.npy", speech)
    result = invoke(tmp_path / "take.npy", "--format", "arkit-csv", "-q")
    assert result.exit_code == 0, result.stderr
    assert "Rig fit, 36 frames" in result.stderr and "RMS error" in result.stderr
    with open(tmp_path / "take.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0][:2] == ["Timecode", "BlendShapeCount"] and len(rows) == 37
    jaw = [float(r[rows[0].index("JawOpen")]) for r in rows[1:]]
    assert max(jaw) > 0.3 and min(jaw) < 0.05  # the jaw opens for AA and rests in silence


def test_several_formats_share_a_stem(tmp_path, speech):
    np.save(tmp_path / "take.npy", speech)
    out = tmp_path / "out" / "clip"
    out.parent.mkdir()
    result = invoke(tmp_path / "take.npy", "--format", "arkit-json,obj,ply", "-o", out, "--fps", 25, "-q")
    assert result.exit_code == 0, result.stderr
    doc = json.loads((out.parent / "clip.arkit.json").read_text())
    assert doc["fps"] == 25.0 and len(doc["weights"]) == 36
    assert len(list((out.parent / "clip_obj").glob("take_*.obj"))) == 36
    assert sorted(p.name for p in (out.parent / "clip_ply").iterdir())[0] == "take_00000.ply"


def test_glb_morph_targets_or_baked(tmp_path, speech, head, speech_wav):
    np.save(tmp_path / "take.npy", speech)
    wav = speech_wav("take.wav", duration=1.2)
    result = invoke(tmp_path / "take.npy", "--format", "glb", "--audio", wav, "-q")
    assert result.exit_code == 0, result.stderr
    assert "ARKit-named morph targets" in result.stderr and (tmp_path / "take.glb").stat().st_size > 0
    # Lips pushed sideways: no control does that, so the auto mode bakes.
    odd = speech.reshape(36, -1, 3).copy()
    odd[:, head.region("lips"), 0] += 0.004
    np.save(tmp_path / "odd.npy", odd)
    result = invoke(tmp_path / "odd.npy", "--format", "glb", "-q")
    assert result.exit_code == 0, result.stderr
    assert "baked per-frame shapes" in result.stderr
    result = invoke(tmp_path / "odd.npy", "--format", "glb", "--no-bake", "-o", tmp_path / "forced.glb", "-q")
    assert result.exit_code == 0 and "morph targets" in result.stderr


def test_visemes_from_an_alignment_with_unknown_phones(tmp_path):
    path = alignment_file(tmp_path, {2: "QQ"})
    result = invoke(path, "--format", "visemes", "--visemes", "rhubarb", "-o", tmp_path / "cues.json")
    assert result.exit_code == 0, result.stderr
    assert "warning" in result.stderr and "QQ" in result.stderr and "'B'" in result.stderr
    cues = json.loads((tmp_path / "cues.json").read_text())["mouthCues"]
    assert [c["value"] for c in cues] == ["X", "A", "B", "A", "B", "X"]
    default = invoke(alignment_file(tmp_path), "--format", "visemes")
    assert default.exit_code == 0, default.stderr
    assert (tmp_path / "take.oculus.tsv").read_text().splitlines()[-1] == "1.20\tsil"


def test_visemes_from_a_motion_need_its_alignment(tmp_path, speech):
    np.save(tmp_path / "take.npy", speech)
    result = invoke(tmp_path / "take.npy", "--format", "visemes")
    assert result.exit_code == 1 and "--alignment" in result.stderr
    result = invoke(tmp_path / "take.npy", "--format", "visemes,arkit-csv", "--alignment", alignment_file(tmp_path), "-q")
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "take.oculus.tsv").is_file() and (tmp_path / "take.csv").is_file()
    assert "warning" not in result.stderr  # 36 frames at 30 fps is the alignment's 1.2 s
    result = invoke(tmp_path / "take.npy", "--format", "visemes", "--alignment", alignment_file(tmp_path), "--fps", 60, "-o", tmp_path / "v.tsv")
    assert result.exit_code == 0 and "lasts 1.20 s but the motion 0.60 s" in result.stderr


def test_vertex_count_mismatch(tmp_path):
    np.save(tmp_path / "small.npy", np.zeros((4, 300), dtype=np.float32))
    result = invoke(tmp_path / "small.npy", "--format", "arkit-csv,visemes", "--alignment", alignment_file(tmp_path))
    assert result.exit_code == 1
    assert "100 vertices per frame but the template has 5080" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["small.npy", "take.align.json"]  # nothing written


def test_unknown_format_lists_the_formats(tmp_path, speech):
    np.save(tmp_path / "take.npy", speech)
    result = invoke(tmp_path / "take.npy", "--format", "fbx")
    assert result.exit_code == 1 and "'fbx'" in result.stderr
    assert all(name in result.stderr for name in FORMATS)


def test_an_alignment_cannot_become_a_motion_format(tmp_path):
    result = invoke(alignment_file(tmp_path), "--format", "glb")
    assert result.exit_code == 1 and "only be exported as visemes" in result.stderr
    (tmp_path / "take.wav").write_bytes(b"RIFF")
    result = invoke(tmp_path / "take.wav", "--format", "visemes")
    assert result.exit_code == 1 and "neither a motion" in result.stderr


def test_existing_outputs_are_left_alone_without_force(tmp_path, speech):
    np.save(tmp_path / "take.npy", speech)
    (tmp_path / "take.csv").write_text("mine")
    (tmp_path / "take_obj").mkdir()
    (tmp_path / "take_obj" / "mine.obj").write_text("mine")
    for fmt in ("arkit-csv", "obj", "arkit-json,arkit-csv"):
        result = invoke(tmp_path / "take.npy", "--format", fmt, "-q")
        assert result.exit_code == 1 and "--force" in result.stderr
    assert (tmp_path / "take.csv").read_text() == "mine" and not (tmp_path / "take.arkit.json").exists()
    assert [p.name for p in (tmp_path / "take_obj").iterdir()] == ["mine.obj"]
    result = invoke(tmp_path / "take.npy", "--format", "arkit-csv,obj", "--force", "-q")
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "take.csv").read_text().startswith("Timecode")
    assert not (tmp_path / "take_obj" / "mine.obj").exists()


def test_export_motion_for_the_animate_command(tmp_path, speech, head):
    lines: list[str] = []
    paths = export_motion(speech.reshape(36, -1, 3), head, ["arkit-csv", "ply"], tmp_path / "say", 30.0, log=lines.append)
    assert paths == [tmp_path / "say.csv", tmp_path / "say_ply"]
    assert (tmp_path / "say_ply" / "say_00035.ply").is_file() and lines[0].startswith("Rig fit")


def test_the_cli_default_smoothing_is_the_library_default():
    assert next(p.default for p in typer.main.get_command(app).commands["export"].params if p.name == "smoothing") == DEFAULT_SMOOTHING

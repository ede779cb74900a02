"""kmtalk_cli.progress and ``--progress json``: every stderr line is one JSON event, and a batch
reports start, progress fractions, each file's result and done."""

from __future__ import annotations

import io
import json

import pytest
import soundfile as sf
from typer.testing import CliRunner

from kmtalk_cli.alignment.espeak import synthesize
from kmtalk_cli.cli import app
from kmtalk_cli.progress import ProgressMode, Reporter

runner = CliRunner()
SENTENCE = "the big brown dog sat on a warm mat"


def events(text: str) -> list[dict]:
    lines = [line for line in text.splitlines() if line.strip()]
    return [json.loads(line) for line in lines]  # fails on any line that is not JSON


def test_reporter_json_events_and_throttled_progress():
    stream = io.StringIO()
    rep = Reporter(ProgressMode.json, "demo", stream=stream)
    rep.start(2)
    with rep.bar("work") as update:
        for done in range(1001):
            update(done, 1000)
    with rep.steps() as stage:
        stage("Loading")
    rep.file("a.wav", "ok", outputs=["a.npy"], seconds=0.5)
    rep.file("b.wav", "failed", message="b.wav is not audio.")
    rep.finish(ok=False)
    got = events(stream.getvalue())
    kinds = [e["event"] for e in got]
    assert kinds[0] == "start" and got[0]["files"] == 2 and kinds[-1] == "done"
    fractions = [e["fraction"] for e in got if e["event"] == "progress"]
    assert 50 <= len(fractions) <= 102 and fractions == sorted(fractions) and fractions[-1] == 1.0
    assert {"event": "stage", "name": "Loading"}.items() <= next(e for e in got if e["event"] == "stage").items()
    files = [e for e in got if e["event"] == "file"]
    assert [(f["path"], f["status"], f["message"]) for f in files] == [("a.wav", "ok", ""), ("b.wav", "failed", "b.wav is not audio.")]
    assert got[-1] | {"elapsed": 0, "seconds": 0} == {
        "event": "done", "command": "demo", "elapsed": 0, "ok": False, "succeeded": 1, "failed": 1, "skipped": 0, "seconds": 0
    }


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clips")
    speech = synthesize(SENTENCE)
    for name in ("one", "two"):
        sf.write(folder / f"{name}.wav", speech.samples, speech.sample_rate)
        (folder / f"{name}.txt").write_text(SENTENCE)
    (folder / "broken.wav").write_text("not audio")
    return folder


def test_align_batch_json_stream(clips, tmp_path):
    result = runner.invoke(app, ["align", str(clips), "-o", str(tmp_path / "out"), "--progress", "json"])
    assert result.exit_code == 1
    got = events(result.stderr)
    assert got[0]["event"] == "start" and got[0]["command"] == "align" and got[0]["files"] == 3
    files = {e["path"].rsplit("/", 1)[-1]: e for e in got if e["event"] == "file"}
    assert files["one.wav"]["status"] == files["two.wav"]["status"] == "ok"
    assert files["one.wav"]["outputs"] == [str(tmp_path / "out" / "one.align.json")]
    assert files["broken.wav"]["status"] == "failed" and files["broken.wav"]["message"]
    assert [e["fraction"] for e in got if e["event"] == "progress"][-1] == 1.0
    assert got[-1]["event"] == "done" and got[-1]["ok"] is False and (got[-1]["succeeded"], got[-1]["failed"]) == (2, 1)
    # Run again: the finished files are skipped, the broken one is tried again.
    again = events(runner.invoke(app, ["align", str(clips), "-o", str(tmp_path / "out"), "--progress", "json"]).stderr)
    assert sorted(e["status"] for e in again if e["event"] == "file") == ["failed", "skipped", "skipped"]


def test_single_file_errors_and_stages_are_events(clips, tmp_path):
    out = tmp_path / "one.npy"
    done = runner.invoke(app, ["animate", str(clips / "one.wav"), "-b", "rig", "-o", str(out), "--progress", "json"])
    assert done.exit_code == 0, done.stderr
    got = events(done.stderr)
    assert [e["event"] for e in got][:2] == ["start", "stage"] and got[-1]["ok"] is True
    assert [e["outputs"][0] for e in got if e["event"] == "file"] == [str(out)]
    again = runner.invoke(app, ["animate", str(clips / "one.wav"), "-b", "rig", "-o", str(out), "--progress", "json"])
    got = events(again.stderr)
    assert again.exit_code == 1
    assert [e["event"] for e in got] == ["start", "error", "done"] and "--force" in got[1]["message"]


@pytest.mark.slow
def test_synth_reports_json(tmp_path):
    made = runner.invoke(app, ["synth", str(tmp_path / "corpus"), "--preset", "tiny", "--subjects", "3", "--sentences", "2", "--workers", "1", "--progress", "json"])
    assert made.exit_code == 0, made.stderr
    got = events(made.stderr)
    assert got[0]["event"] == "start" and got[-1] == got[-1] | {"event": "done", "ok": True}
    assert any(e["event"] == "progress" for e in got)


def test_train_reports_each_epoch(tiny_corpus, tmp_path):
    config = tmp_path / "tiny.json"
    config.write_text('{"audio": {"dim": 16, "layers": 1}, "d_model": 16}')
    trained = runner.invoke(app, ["train", "--data", str(tiny_corpus), "--out", str(tmp_path / "run"), "--config", str(config), "--epochs", "1", "--progress", "json"])
    assert trained.exit_code == 0, trained.stderr
    got = events(trained.stderr)
    epochs = [e for e in got if e["event"] == "epoch"]
    assert [e["epoch"] for e in epochs] == [0] and all(e["train_loss"] > 0 for e in epochs)
    assert got[-1]["event"] == "done" and got[-1]["ok"] is True

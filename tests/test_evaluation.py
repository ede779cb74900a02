"""Evaluation on hand-made VOCASET-layout corpora: prediction sources, pooling, reports, the CLI."""

from __future__ import annotations

import json
import pickle
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import typer
from typer.testing import CliRunner

from kmtalk_cli.commands.evaluate import evaluate as evaluate_command
from kmtalk_cli.data.dataset import open_dataset, subject_of
from kmtalk_cli.errors import DatasetError, ModelError, MotionError, OutputError
from kmtalk_cli.evaluation import (
    ModelPredictions,
    evaluate,
    format_markdown,
    predictions_from_dir,
    resolve_regions,
    write_json,
    write_markdown,
)
from kmtalk_cli.models import LoadedModel

FPS = 30
V = 30
LIPS = list(range(5))
UPPER = list(range(20, 30))
#: name → frames; train and test sequences of two subjects, test lengths unequal.
SEQUENCES = {"SubjA_s01": 24, "SubjA_s02": 21, "SubjA_s03": 18, "SubjB_s01": 30}
SPLITS = {"train": ["SubjA_s01", "SubjA_s02"], "test": ["SubjA_s03", "SubjB_s01"]}


def make_corpus(
    root: Path, *, n_vertices: int = V, regions: dict[str, list[int]] | None = None, sequences=SEQUENCES, splits=SPLITS
) -> Path:
    """templates.pkl, vertices_npy/, wav/ (exactly T/30 s of tone), regions/ and splits.json."""
    rng = np.random.default_rng(0)
    (root / "vertices_npy").mkdir(parents=True)
    (root / "wav").mkdir()
    templates = {subject_of(name): rng.normal(size=(n_vertices, 3)) * 0.05 for name in sequences}
    (root / "templates.pkl").write_bytes(pickle.dumps(templates))
    for name, frames in sequences.items():
        motion = templates[subject_of(name)] + rng.normal(size=(frames, n_vertices, 3)) * 0.002
        np.save(root / "vertices_npy" / f"{name}.npy", motion.reshape(frames, -1).astype(np.float32))
        t = np.arange(frames * 16_000 // FPS) / 16_000
        sf.write(root / "wav" / f"{name}.wav", (0.1 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 16_000)
    regions = {"lips": LIPS, "upper_face": UPPER} if regions is None else regions
    if regions:
        (root / "regions").mkdir()
        for region, idx in regions.items():
            (root / "regions" / f"{region}.txt").write_text(", ".join(map(str, idx)))
    (root / "splits.json").write_text(json.dumps(splits))
    return root


@pytest.fixture
def corpus(tmp_path):
    return open_dataset(make_corpus(tmp_path / "corpus"))


def ground_truth(dataset, name):
    return dataset.load(name, with_audio=False).vertices


def save_predictions(dataset, folder: Path, *, offset=(0.0, 0.0, 0.0), flat=True, naming="{name}.npy") -> Path:
    folder.mkdir(exist_ok=True)
    for ref in dataset.split("test"):
        pred = ground_truth(dataset, ref.name) + np.asarray(offset, dtype=np.float32)
        np.save(folder / naming.format(name=ref.name, subject=ref.subject), pred.reshape(len(pred), -1) if flat else pred)
    return folder


def run(dataset, predict, **kwargs):
    regions = resolve_regions(dataset)
    return evaluate(dataset, "test", predict, lip_idx=regions.lips, upper_idx=regions.upper_face, with_audio=False, **kwargs)


# --------------------------------------------------------------------------------------------
# evaluate()
# --------------------------------------------------------------------------------------------


def test_ground_truth_as_prediction_scores_zero(corpus, tmp_path):
    report = run(corpus, predictions_from_dir(save_predictions(corpus, tmp_path / "p"), corpus.split("test")))
    assert [r.name for r in report.sequences] == ["SubjA_s03", "SubjB_s01"]
    assert [r.frames for r in report.sequences] == [18, 30]
    p = report.pooled
    assert (p.sequences, p.frames) == (2, 48)
    assert p.lve_paper == p.lve_mm == p.fdd == p.mve_mm == 0.0


@pytest.mark.parametrize("flat", [True, False])
def test_one_millimetre_offset(corpus, tmp_path, flat):
    folder = save_predictions(corpus, tmp_path / "p", offset=(0.0, 0.0, 0.001), flat=flat)
    report = run(corpus, predictions_from_dir(folder, corpus.split("test")))
    for r in (*report.sequences, report.pooled):
        assert r.lve_mm == pytest.approx(1.0, rel=1e-3)
        assert r.lve_paper == pytest.approx(1e-6, rel=2e-3)
        assert r.mve_mm == pytest.approx(1.0, rel=1e-3)


def test_lve_is_pooled_over_frames_and_fdd_averaged_over_sequences(corpus):
    # 1 mm error on the 18-frame sequence, 3 mm on the 30-frame one.
    shift = {"SubjA_s03": 0.001, "SubjB_s01": 0.003}

    def predict(seq):
        return seq.vertices + np.array([shift[seq.name], 0, 0], dtype=np.float32)

    report = run(corpus, predict)
    assert report.pooled.lve_mm == pytest.approx((18 * 1 + 30 * 3) / 48, rel=1e-3)
    assert report.pooled.lve_paper == pytest.approx((18 * 1e-6 + 30 * 9e-6) / 48, rel=2e-3)
    assert report.pooled.fdd == pytest.approx(np.mean([r.fdd for r in report.sequences]))


def test_a_failing_sequence_is_reported_and_left_out(corpus):
    def predict(seq):
        if seq.subject == "SubjB":
            raise MotionError("the model exploded")
        return seq.vertices

    report = run(corpus, predict)
    assert [r.name for r in report.sequences] == ["SubjA_s03"]
    assert [(f.name, f.message) for f in report.failures] == [("SubjB_s01", "the model exploded")]
    assert report.pooled.frames == 18
    assert "Failed sequences (1 of 2" in format_markdown(report)


def test_too_short_or_wrong_predictions_fail_per_sequence_and_all_failing_raises(corpus):
    with pytest.raises(MotionError, match="Every sequence.*fewer than the ground truth"):
        run(corpus, lambda seq: seq.vertices[:-1])
    with pytest.raises(MotionError, match="Every sequence.*vertices per frame"):
        run(corpus, lambda seq: seq.vertices[:, :-1])


def test_unknown_or_empty_split(corpus):
    with pytest.raises(DatasetError, match="no split 'val'"):
        evaluate(corpus, "val", lambda s: s.vertices, lip_idx=np.array([0]), upper_idx=np.array([1]))
    empty = replace(corpus, splits={"test": []})
    with pytest.raises(DatasetError, match="has no sequences"):
        evaluate(empty, "test", lambda s: s.vertices, lip_idx=np.array([0]), upper_idx=np.array([1]))
    with pytest.raises(DatasetError, match="lips region"):
        evaluate(corpus, "test", lambda s: s.vertices, lip_idx=np.array([V]), upper_idx=np.array([1]))


def test_progress_is_reported(corpus):
    calls = []
    run(corpus, lambda s: s.vertices, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(0, 2), (1, 2), (2, 2)]


# --------------------------------------------------------------------------------------------
# Regions and conventions
# --------------------------------------------------------------------------------------------


def test_regions_come_from_the_dataset_and_codetalker_names_count(tmp_path):
    ds = open_dataset(make_corpus(tmp_path / "c", regions={"lve": [1, 2], "fdd": [3, 4, 5]}))
    regions = resolve_regions(ds)
    assert regions.lips.tolist() == [1, 2] and regions.upper_face.tolist() == [3, 4, 5]
    assert "regions" in regions.source


def test_missing_regions_say_which_files_to_add(tmp_path):
    ds = open_dataset(make_corpus(tmp_path / "c", regions={"lips": LIPS}))
    with pytest.raises(DatasetError, match=r"no upper_face region; add regions/lips.txt and regions/upper_face.txt"):
        resolve_regions(ds)


def test_training_needs_only_the_lips(tmp_path):
    ds = open_dataset(make_corpus(tmp_path / "c", regions={"lips": LIPS}))
    regions = resolve_regions(ds, required=("lips",))
    assert regions.lips.tolist() == list(LIPS) and regions.upper_face.size == 0
    bare = open_dataset(make_corpus(tmp_path / "d", regions={}))
    with pytest.raises(DatasetError, match="no lips region"):
        resolve_regions(bare, required=("lips",))


def test_bundled_head_regions_when_the_mesh_is_the_bundled_head(tmp_path):
    from kmtalk_cli.face.template import bundled_template

    head = bundled_template()
    ds = open_dataset(make_corpus(tmp_path / "c", n_vertices=head.n_vertices, regions={}))
    regions = resolve_regions(ds)
    assert np.array_equal(regions.lips, head.regions["lips"])
    assert np.array_equal(regions.upper_face, head.regions["upper_face"])
    assert "bundled head" in regions.source


def test_biwi_meshes_use_the_biwi_convention(tmp_path):
    root = make_corpus(tmp_path / "biwi", n_vertices=23_370, sequences={"F2_e37": 3, "M3_e37": 2}, splits={"test": ["F2_e37", "M3_e37"]})
    ds = open_dataset(root, native_fps=25)
    text = format_markdown(run(ds, lambda s: s.vertices))
    assert "BIWI convention" in text and "LVE paper (×1e-4 u²)" in text and "FDD (×1e-5 u²)" in text
    assert "normalised length unit" in text


# --------------------------------------------------------------------------------------------
# Saved prediction files
# --------------------------------------------------------------------------------------------


def test_codetalker_condition_naming(corpus, tmp_path):
    folder = save_predictions(corpus, tmp_path / "p", naming="{name}_condition_{subject}.npy")
    np.save(folder / "SubjA_s03_condition_SubjB.npy", np.zeros((18, V * 3)))  # another style, not chosen
    preds = predictions_from_dir(folder, corpus.split("test"))
    assert preds.files["SubjA_s03"].name == "SubjA_s03_condition_SubjA.npy"
    assert run(corpus, preds).pooled.lve_paper == 0.0


def test_condition_picked_by_style_or_ambiguous(corpus, tmp_path):
    folder = tmp_path / "p"
    folder.mkdir()
    for ref in corpus.split("test"):
        for cond in ("SubjX", "SubjY"):
            np.save(folder / f"{ref.name}_condition_{cond}.npy", np.zeros((40, V * 3)))
    with pytest.raises(MotionError, match=r"several conditions \(SubjX, SubjY\).*--style"):
        predictions_from_dir(folder, corpus.split("test"))
    preds = predictions_from_dir(folder, corpus.split("test"), style="SubjY")
    assert {p.name for p in preds.files.values()} == {"SubjA_s03_condition_SubjY.npy", "SubjB_s01_condition_SubjY.npy"}


def test_missing_predictions_name_how_many_and_the_first(corpus, tmp_path):
    folder = tmp_path / "p"
    folder.mkdir()
    np.save(folder / "SubjA_s03.npy", np.zeros((18, V * 3)))
    with pytest.raises(MotionError, match=r"lacks predictions for 1 of 2 sequences \(first: SubjB_s01\)"):
        predictions_from_dir(folder, corpus.split("test"))
    with pytest.raises(MotionError, match="does not exist"):
        predictions_from_dir(tmp_path / "nowhere", corpus.split("test"))


def test_longer_saved_predictions_are_truncated(corpus, tmp_path):
    folder = tmp_path / "p"
    folder.mkdir()
    for ref in corpus.split("test"):
        gt = ground_truth(corpus, ref.name)
        np.save(folder / f"{ref.name}.npy", np.concatenate([gt, np.ones((5, V, 3), dtype=np.float32)]))
    assert run(corpus, predictions_from_dir(folder, corpus.split("test"))).pooled.mve_mm == 0.0


# --------------------------------------------------------------------------------------------
# Reports
# --------------------------------------------------------------------------------------------


def test_json_and_markdown_reports(corpus, tmp_path):
    report = run(corpus, lambda s: s.vertices + np.float32(0.001), model="test model", regions_source="regions/")
    json_path = write_json(report, tmp_path / "r.json")
    md_path = write_markdown(report, tmp_path / "r.md")
    data = json.loads(json_path.read_text())
    assert data["format"] == "kmtalk-evaluation" and data["split"] == "test" and data["model"] == "test model"
    assert data["units"] == {"lve_paper": "m²", "lve_mm": "mm", "fdd": "m²", "mve_mm": "mm"}
    assert data["convention"]["lve_scale"] == 1e-5
    assert {(r["metric"], r["name"], r["vertices"]) for r in data["regions"]} == {("lve", "lips", 5), ("fdd", "upper_face", 10), ("mve", "all", V)}
    assert data["pooled"]["frames"] == 48 and len(data["sequences"]) == 2
    assert data["pooled"]["lve_paper"] == pytest.approx(3e-6, rel=1e-3)  # √3 mm along the diagonal
    text = md_path.read_text()
    assert text == format_markdown(report)
    assert "LVE over `lips` (5 vertices), FDD over `upper_face` (10 vertices)" in text
    assert "| sequence | subject | frames | LVE paper (×1e-5 m²) | LVE (mm) | FDD (×1e-7 m²) | MVE (mm) |" in text
    assert "| **pooled** |  | 48 | **0.3000** | **1.732** |" in text
    with pytest.raises(OutputError, match="--force"):
        write_json(report, json_path)
    write_json(report, json_path, force=True)


def test_a_non_finite_metric_is_refused_not_written(corpus, tmp_path):
    report = run(corpus, lambda s: s.vertices + np.float32(0.001), model="m", regions_source="regions/")
    broken = replace(report, pooled=replace(report.pooled, lve_mm=float("nan")))
    with pytest.raises(MotionError, match="NaN or infinite metric"):
        write_json(broken, tmp_path / "r.json")
    assert not (tmp_path / "r.json").exists()


# --------------------------------------------------------------------------------------------
# Checkpoint predictions (a LoadedModel around a fake network)
# --------------------------------------------------------------------------------------------


class FakeNet(torch.nn.Module):
    """Predicts a constant 1 mm lift; records the style and alignment it was given."""

    def __init__(self, drop: int = 0):
        super().__init__()
        self.drop = drop
        self.calls: list[tuple] = []

    def predict(self, samples, n_frames, style=None, alignment=None):
        self.calls.append((n_frames, style, alignment))
        out = torch.zeros(n_frames - self.drop, V, 3)
        out[..., 1] = 0.001
        return out.reshape(n_frames - self.drop, V * 3)


def fake_model(*, drop=0, key_motion=False, styles=("SubjA",), path=None) -> LoadedModel:
    info = {"kind": "key-motion" if key_motion else "backbone", "backbone": "fake", "config": {"fps": FPS, "n_vertices": V}, "styles": list(styles)}
    return LoadedModel(FakeNet(drop), info, path)


def run_model(dataset, predictor):
    regions = resolve_regions(dataset)
    return evaluate(dataset, "test", predictor, lip_idx=regions.lips, upper_idx=regions.upper_face, model=predictor.description)


def test_model_offsets_are_added_to_the_template_with_own_or_average_style(corpus):
    model = fake_model()
    predictor = ModelPredictions(model, corpus)
    report = run_model(corpus, predictor)
    # Style index 0 (SubjA, a training subject) for SubjA; the average (None) for unseen SubjB.
    assert [(n, s) for n, s, _ in model.model.calls] == [(18, 0), (30, None)]
    assert "own subject's style" in report.model and "fake checkpoint" in report.model
    # The prediction is template + 1 mm; the error is the GT's motion about the template.
    gt = ground_truth(corpus, "SubjA_s03")
    template = corpus.templates["SubjA"] + np.array([0, 0.001, 0], dtype=np.float32)
    expected = np.linalg.norm(gt - template, axis=-1).mean() * 1000
    assert report.sequences[0].mve_mm == pytest.approx(expected, rel=1e-4)

    model.model.calls.clear()
    run_model(corpus, ModelPredictions(model, corpus, style_mode="average"))
    assert [s for _, s, _ in model.model.calls] == [None, None]
    model.model.calls.clear()
    run_model(corpus, ModelPredictions(model, corpus, style="SubjA"))
    assert [s for _, s, _ in model.model.calls] == [0, 0]


def test_model_style_and_template_are_checked_first(corpus):
    with pytest.raises(ModelError, match="not one of this model's training subjects"):
        ModelPredictions(fake_model(), corpus, style="SubjZ")
    bad = fake_model()
    bad.info["config"]["n_vertices"] = V + 1
    with pytest.raises(ModelError, match="template of 31 vertices"):
        ModelPredictions(bad, corpus)


def test_the_model_is_asked_for_exactly_the_ground_truth_length(corpus):
    model = fake_model(drop=0)
    run_model(corpus, ModelPredictions(model, corpus))
    assert [n for n, _, _ in model.model.calls] == [18, 30]


def test_key_motion_models_get_aligner_or_true_alignments(corpus, monkeypatch):
    import kmtalk_cli.alignment as alignment_module
    from kmtalk_cli.alignment import Alignment, Segment
    from kmtalk_cli.alignment.textgrid import write_textgrid
    from kmtalk_cli.alignment.types import fill_silence

    monkeypatch.setattr(alignment_module, "align", lambda audio, text=None, **kw: f"aligned {audio.duration:.1f}")
    model = fake_model(key_motion=True)
    run_model(corpus, ModelPredictions(model, corpus))
    assert [a for *_, a in model.model.calls] == ["aligned 0.6", "aligned 1.0"]

    (corpus.root / "alignments").mkdir()
    for name, frames in (("SubjA_s03", 18), ("SubjB_s01", 30)):
        duration = frames / FPS
        phones = fill_silence([Segment("HH", 0.1, 0.3), Segment("AY", 0.3, 0.5)], duration)
        write_textgrid(Alignment((Segment("hi", 0.1, 0.5),), phones, "test", "forced", "hi", duration), corpus.root / "alignments" / f"{name}.TextGrid")
    model.model.calls.clear()
    with_grids = open_dataset(corpus.root)
    report = run_model(with_grids, ModelPredictions(model, with_grids, alignments="true"))
    assert [[p.label for p in a.phones if p.label != "SIL"] for *_, a in model.model.calls] == [["HH", "AY"]] * 2
    assert "phones from the corpus TextGrids" in report.model


# --------------------------------------------------------------------------------------------
# The command line
# --------------------------------------------------------------------------------------------

runner = CliRunner()


def cli_app() -> typer.Typer:
    app = typer.Typer()
    app.callback()(lambda: None)
    app.command()(evaluate_command)
    return app


def invoke(*args):
    return runner.invoke(cli_app(), ["evaluate", *map(str, args), "-q"])


def test_cli_prediction_dir(corpus, tmp_path):
    folder = save_predictions(corpus, tmp_path / "preds", offset=(0.001, 0, 0))
    result = invoke(folder, "--data", corpus.root)
    assert result.exit_code == 0, result.stderr
    assert "| **pooled** |  | 48 | **0.1000** | **1.000** |" in result.stdout
    stem = tmp_path / "preds.test.eval"
    assert json.loads(stem.with_name("preds.test.eval.json").read_text())["pooled"]["lve_mm"] == pytest.approx(1.0, rel=1e-3)
    assert stem.with_name("preds.test.eval.md").read_text() == result.stdout
    again = invoke(folder, "--data", corpus.root)
    assert again.exit_code == 1 and "--force" in again.stderr
    assert invoke(folder, "--data", corpus.root, "--force").exit_code == 0


def test_cli_checkpoint_with_a_fake_model(corpus, tmp_path, monkeypatch):
    import kmtalk_cli.models

    checkpoint = tmp_path / "run" / "best.safetensors"
    checkpoint.parent.mkdir()
    checkpoint.write_bytes(b"")
    monkeypatch.setattr(kmtalk_cli.models, "load_model", lambda path: fake_model(path=Path(path)))
    result = invoke(checkpoint, "--data", corpus.root, "--out", tmp_path / "report", "--style", "SubjA")
    assert result.exit_code == 0, result.stderr
    assert "fake checkpoint" in result.stdout and "style SubjA" in result.stdout
    assert (tmp_path / "report.json").is_file() and (tmp_path / "report.md").is_file()
    assert invoke(checkpoint, "--data", corpus.root).exit_code == 0
    assert (tmp_path / "run" / "best.test.eval.json").is_file()


def test_cli_reports_failed_sequences_and_exits_1(corpus, tmp_path):
    folder = save_predictions(corpus, tmp_path / "preds")
    np.save(folder / "SubjB_s01.npy", np.zeros((3, V * 3)))
    result = invoke(folder, "--data", corpus.root, "--out", tmp_path / "r")
    assert result.exit_code == 1
    assert "SubjB_s01" in result.stderr and "1 of 2 sequences could not be evaluated" in result.stderr
    assert "Failed sequences" in (tmp_path / "r.md").read_text()


@pytest.mark.parametrize(
    ("make_source", "data", "extra", "message"),
    [
        (lambda p: p / "missing.safetensors", "corpus", [], "does not exist"),
        (lambda p: p / "preds", "missing", [], "Dataset directory"),
        (lambda p: p / "not-a-checkpoint.safetensors", "corpus", [], "not a readable safetensors"),
        (lambda p: p / "preds", "corpus", ["--split", "val"], "no split 'val'"),
        (lambda p: p / "preds", "corpus", ["--style", "SubjA", "--style-mode", "own"], "not both"),
        (lambda p: p / "preds", "corpus", ["--style-mode", "average"], "applies to checkpoints"),
    ],
)
def test_cli_bad_input_exits_1(corpus, tmp_path, make_source, data, extra, message):
    save_predictions(corpus, tmp_path / "preds")
    (tmp_path / "not-a-checkpoint.safetensors").write_text("hello")
    data_dir = corpus.root if data == "corpus" else tmp_path / data
    result = invoke(make_source(tmp_path), "--data", data_dir, *extra)
    assert result.exit_code == 1
    assert message in result.stderr


@pytest.mark.slow
def test_synthetic_corpus_end_to_end(tmp_path):
    from kmtalk_cli.data.synth import PRESETS, build_corpus

    root = tmp_path / "synth"
    build_corpus(root, replace(PRESETS["tiny"], subjects=3, sentences=2, workers=1))
    ds = open_dataset(root)
    folder = tmp_path / "preds"
    folder.mkdir()
    for ref in ds.split("test"):
        np.save(folder / f"{ref.name}.npy", ground_truth(ds, ref.name))
    result = invoke(folder, "--data", root)
    assert result.exit_code == 0, result.stderr
    report = json.loads((tmp_path / "preds.test.eval.json").read_text())
    assert report["pooled"]["lve_mm"] == 0.0
    assert {r["name"]: r["vertices"] for r in report["regions"]}["lips"] == len(ds.regions["lips"])


def test_cli_run_folder_and_a_report_named_with_its_suffix(corpus, tmp_path, monkeypatch):
    import kmtalk_cli.models

    run = tmp_path / "run"
    run.mkdir()
    (run / "best.safetensors").write_bytes(b"")
    monkeypatch.setattr(kmtalk_cli.models, "load_model", lambda path: fake_model(path=Path(path)))
    result = invoke(run, "--data", corpus.root, "--out", tmp_path / "report.json")  # a run folder: its best checkpoint
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "report.json").is_file() and (tmp_path / "report.md").is_file() and not (tmp_path / "report.json.json").exists()

"""The backbone registry: built-ins, entry-point plugins (good and broken), and one generic
contract test that every registered backbone must pass."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from importlib.metadata import EntryPoint

import pytest
import torch

import kmtalk_cli.backbones as registry
from kmtalk_cli.backbones import Backbone, BackboneConfig, create_backbone, list_backbones
from kmtalk_cli.backbones.base import Batch
from kmtalk_cli.backbones.checkpoint import load_backbone, save_checkpoint
from kmtalk_cli.errors import KmtalkWarning, ModelError

BUILT_IN = {"faceformer", "codetalker", "selftalk"}


@dataclass(frozen=True)
class EchoConfig(BackboneConfig):
    gain: float = 1.0


class Echo(Backbone):
    """A plugin from a third-party package: offsets = a linear map of the audio features."""

    description = "test plugin"
    config_class = EchoConfig

    def __init__(self, config: EchoConfig) -> None:
        super().__init__(config)
        self.out = torch.nn.Linear(self.feature_dim, config.vertex_dim)
        self.condition_map = self.make_condition_map(config.vertex_dim)

    def decode(self, features, frame_lengths, *, condition=None, style=None, target=None):
        out = self.out(features) * self.config.gain
        if condition is not None:
            out = out + self.mapped_condition(condition, out.shape[0], out.shape[1], out.dtype)
        return out

    def loss(self, batch, stage="main", features=None):
        pred = self.decode(self.encode_audio(batch.audio, batch.audio_lengths, batch.frame_lengths), batch.frame_lengths)
        loss = ((pred - batch.offsets) ** 2).mean()
        return loss, {"loss": float(loss.detach())}


@pytest.fixture
def plugins(monkeypatch):
    """Pretend two packages declare `kmtalk.backbones` entry points: a good one and a broken one."""
    module = __name__
    eps = [
        EntryPoint("echo", f"{module}:Echo", registry.ENTRY_POINT_GROUP),
        EntryPoint("broken", "kmtalk_no_such_package.models:Broken", registry.ENTRY_POINT_GROUP),
    ]
    monkeypatch.setattr(registry, "entry_points", lambda group: [e for e in eps if e.group == group])
    saved = dict(registry._registry)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        registry.rediscover()
    yield caught
    registry._registry.clear()
    registry._registry.update(saved)
    registry._discovered = True


def test_builtins_are_listed() -> None:
    names = {b.name for b in list_backbones()}
    assert BUILT_IN <= names
    for info in list_backbones():
        assert info.description and info.parameters > 0 and "default" in info.presets


def test_plugin_arrives_and_broken_plugin_is_a_named_warning(plugins) -> None:
    assert "echo" in {b.name for b in list_backbones()}
    model = create_backbone("echo", n_vertices=4, gain=2.0, audio={"dim": 8, "layers": 1})
    assert isinstance(model, Echo) and model.config.gain == 2.0
    messages = [str(w.message) for w in plugins if issubclass(w.category, KmtalkWarning)]
    assert any("broken" in m and "kmtalk_no_such_package" in m for m in messages)


def test_unknown_names_and_presets_are_errors_listing_what_exists() -> None:
    with pytest.raises(ModelError, match="available: .*faceformer"):
        create_backbone("facefarmer")
    with pytest.raises(ModelError, match="no preset 'huge'"):
        create_backbone("faceformer", preset="huge")
    with pytest.raises(ModelError, match="Bad configuration"):
        create_backbone("faceformer", {"n_vertices": 10, "no_such_field": 1})


@pytest.mark.parametrize("name", ["faceformer", "codetalker", "selftalk"])
@pytest.mark.parametrize(("field", "value", "said"), [
    ("n_styles", "two", "n_styles must be a whole number, got 'two'"),
    ("fps", True, "fps must be a number, got True"),
    ("audio", {"dim": "wide"}, "dim must be a whole number, got 'wide'"),
    ("audio", {"normalise": "loud"}, "audio encoder normalise must be one of bands, level, not 'loud'"),
])
def test_values_of_the_wrong_kind_are_named(name: str, field: str, value, said: str) -> None:
    """A user's JSON with a string or a flag where a number goes fails with one sentence naming
    the field, not later inside a layer."""
    with pytest.raises(ModelError, match=f"Bad configuration for backbone '{name}': {said}"):
        create_backbone(name, **{field: value})
    assert create_backbone(name, n_styles=2, fps=25, audio={"dim": 16, "layers": 1}) is not None  # ints pass where floats go


def tiny(name: str) -> Backbone:
    torch.manual_seed(0)
    model = create_backbone(name, n_vertices=40, n_styles=2, condition_dim=4, lip_vertices=tuple(range(10)), audio={"dim": 16, "layers": 2})
    # Zero-initialised outputs would make every test below trivially pass: perturb all weights.
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    return model


def batch_of(lengths: list[int], dim: int) -> Batch:
    g = torch.Generator().manual_seed(1)
    frames = max(lengths)
    audio = torch.zeros(len(lengths), frames * 16000 // 30)
    for i, n in enumerate(lengths):
        audio[i, : n * 16000 // 30] = torch.randn(n * 16000 // 30, generator=g) * 0.1
    offsets = torch.zeros(len(lengths), frames, dim)
    for i, n in enumerate(lengths):
        offsets[i, :n] = torch.randn(n, dim, generator=g) * 1e-3
    return Batch(audio, torch.tensor([n * 16000 // 30 for n in lengths]), offsets, torch.tensor(lengths), style=torch.tensor([0, 1][: len(lengths)]))


def check_contract(name: str, tmp_path) -> None:
    """What `kmtalk train`, the key-motion wrapper and `kmtalk animate` rely on from any backbone."""
    model = tiny(name)
    batch = batch_of([20, 13], model.config.vertex_dim)
    for stage in model.stages:  # forward and backward in every stage
        loss, parts = model.loss(batch, stage)
        loss.backward()
        assert torch.isfinite(loss) and parts
    model.eval()
    with torch.no_grad():
        feats = model.encode_audio(batch.audio, batch.audio_lengths, batch.frame_lengths)
        together = model.decode(feats, batch.frame_lengths, style=batch.style)
        for i, n in enumerate(batch.frame_lengths.tolist()):
            alone = model.decode(
                model.encode_audio(batch.audio[i : i + 1, : batch.audio_lengths[i]], batch.audio_lengths[i : i + 1], batch.frame_lengths[i : i + 1]),
                batch.frame_lengths[i : i + 1], style=batch.style[i : i + 1],
            )
            assert torch.allclose(together[i, :n], alone[0], atol=1e-4), f"{name}: a padded batch differs from one by one"
        # The output depends on the conditioning sequence's content (that is how key motions
        # steer a backbone), not only on whether one is given.
        g = torch.Generator().manual_seed(2)
        one, other = (torch.randn(2, batch.offsets.shape[1], 4, generator=g) for _ in range(2))
        with_one = model.decode(feats, batch.frame_lengths, condition=one, style=batch.style)
        with_other = model.decode(feats, batch.frame_lengths, condition=other, style=batch.style)
        moved = (with_one - with_other)[0, :20].abs().amax()
        assert moved > 1e-3 * together[0, :20].abs().amax().clamp_min(1e-6), f"{name}: the output ignores the conditioning sequence"
    path = tmp_path / f"{name}.safetensors"
    save_checkpoint(model, path, {"kind": "backbone", "backbone": name, "config": model.config.to_dict()})
    loaded, info = load_backbone(path)
    audio = batch.audio[0, : batch.audio_lengths[0]]
    assert torch.equal(loaded.predict(audio, 20, style=1), model.predict(audio, 20, style=1))
    assert info["config"]["n_vertices"] == 40


@pytest.mark.parametrize("name", sorted(b.name for b in list_backbones()))
def test_every_registered_backbone_meets_the_contract(name: str, tmp_path) -> None:
    check_contract(name, tmp_path)


def test_a_plugin_meets_the_contract(plugins, tmp_path) -> None:
    assert "echo" in {b.name for b in list_backbones()}
    check_contract("echo", tmp_path)


def test_the_contract_catches_a_backbone_that_ignores_its_condition(plugins, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(Echo, "mapped_condition", lambda self, c, b, t, d: torch.zeros(b, t, self.config.vertex_dim))
    with pytest.raises(AssertionError, match="ignores the conditioning"):
        check_contract("echo", tmp_path)


def test_backbones_listing_fits_80_columns() -> None:
    from typer.testing import CliRunner

    from kmtalk_cli.cli import app

    result = CliRunner().invoke(app, ["backbones"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80 and "…" not in result.stdout
    for b in list_backbones():  # every name and the whole description are there, wrapped
        assert b.name in result.stdout
        assert " ".join(b.description.split()) in " ".join(result.stdout.split())


def test_frame_loops_run_narrow_models_on_one_thread_and_wide_ones_on_all() -> None:
    """Small per-frame products are not worth splitting; paper-size ones gain a core's bandwidth."""
    from kmtalk_cli.backbones.base import SPLIT_WIDTH, frame_loop_threads

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with frame_loop_threads(torch.device("cpu"), SPLIT_WIDTH - 1):
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
        with frame_loop_threads(torch.device("cpu"), SPLIT_WIDTH):
            assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)

"""kmtalk_cli.cli: the command list a newcomer reads first."""

from __future__ import annotations

import re

from typer.testing import CliRunner

from kmtalk_cli.cli import app

PIPELINE_ORDER = ["align", "keymotions", "complete", "animate", "render", "export", "view", "synth", "train", "evaluate", "backbones"]


def test_help_lists_the_commands_in_pipeline_order():
    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "100"})
    assert result.exit_code == 0
    listed = re.findall(r"^│ (\w+)\s{2,}", result.stdout.split("Commands", 1)[1], flags=re.M)
    assert listed == PIPELINE_ORDER

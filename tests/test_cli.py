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


def test_benchmarks_tools_and_examples_use_the_library_not_the_commands():
    """Commands are thin CLI wrappers; anything else builds on the library modules they call."""
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    scripts = [p for folder in ("benchmarks", "tools", "examples") for p in (root / folder).rglob("*.py")]
    assert scripts
    offenders = [str(p.relative_to(root)) for p in scripts if "kmtalk_cli.commands" in p.read_text(encoding="utf-8")]
    assert offenders == []

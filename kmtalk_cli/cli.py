"""The ``kmtalk`` command line: a Typer app whose commands live in :mod:`kmtalk_cli.commands`.

Commands import their heavy dependencies inside the function so ``kmtalk --help`` stays instant.
"""

from __future__ import annotations

from typing import Annotated

import typer

from . import __version__
from .commands.align import align
from .commands.animate import animate, complete, keymotions
from .commands.backbones import backbones
from .commands.evaluate import evaluate
from .commands.export import export
from .commands.render import render
from .commands.synth import synth
from .commands.train import train
from .commands.view import view

app = typer.Typer(
    name="kmtalk",
    help="Speech-driven 3D facial animation with KMTalk key motions.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    rich_markup_mode="rich",
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"kmtalk {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", help="Show the version and exit.", callback=_print_version, is_eager=True)
    ] = False,
) -> None:
    """Speech-driven 3D facial animation with KMTalk key motions."""

# In pipeline order, then the tools around it (`kmtalk --help` lists them so).
app.command(help="Align speech to timed ARPAbet phones (pocketsphinx built in, Montreal Forced Aligner if installed).")(align)
app.command(help="Key frames at phoneme boundaries and the predicted face there (.keys.npz).")(keymotions)
app.command(help="Complete the full motion from key motions, guided by the audio (.npy).")(complete)
app.command(help="Speech → phones → key motions → full face motion (.npy); --render for an mp4.")(animate)
app.command(help="Render a mesh motion (.npy/.npz) to an mp4 with the speech muxed in.")(render)
app.command(help="Export a motion (ARKit CSV/JSON, glTF, OBJ/PLY sequences) or an alignment (visemes).")(export)
app.command(help="Write a self-contained HTML page that plays a .glb with its speech (file:// or --serve).")(view)
app.command(help="Build a synthetic talking-face corpus (VOCASET layout) from the rigged head and espeak-ng speech.")(synth)
app.command(help="Train a backbone (with --key-motions: KMTalk) on a VOCASET/BIWI-format corpus.")(train)
app.command(help="Score a checkpoint or saved predictions on a corpus split: LVE (paper and mm), FDD, MVE.")(evaluate)
app.command(help="List the backbones, their presets, training stages and bundled weights.")(backbones)

"""``kmtalk view``: a .glb to a self-contained HTML player (three.js inline), optionally served."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .audio_options import ChannelsOpt, RawFormatOpt, SampleRateOpt
from .common import info, user_errors

#: Port of ``--serve`` unless told otherwise.
DEFAULT_PORT = 8765


def view(
    glb: Annotated[Path, typer.Argument(help="A .glb from `kmtalk export --format glb`.")],
    audio: Annotated[
        Path | None, typer.Option("--audio", "-a", help="Speech to play along (default: the audio the .glb names, if found).")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Page to write (default: GLB with .html; with --serve, none unless given).")
    ] = None,
    serve: Annotated[bool, typer.Option("--serve", help="Serve the page on localhost until Ctrl-C.")] = False,
    port: Annotated[int, typer.Option("--port", help="Port for --serve (0: any free port).", min=0, max=65535)] = DEFAULT_PORT,
    force: Annotated[bool, typer.Option("--force", "-f", help="Overwrite an existing page.")] = False,
    sample_rate: SampleRateOpt = None,
    channels: ChannelsOpt = 1,
    raw_format: RawFormatOpt = "PCM_16",
) -> None:
    """Write a self-contained HTML page that plays GLB with its speech; opens from file:// or --serve."""
    with user_errors():
        from ..atomic import atomic_output, check_output_path
        from ..viewer import start_server, viewer_page

        if output is None and not serve:
            output = glb.with_suffix(".html")
        if output is not None:
            output = check_output_path(output, force=force, suffixes=(".html", ".htm"), what="an HTML page")
        page = viewer_page(glb, audio, sample_rate=sample_rate, channels=channels, raw_format=raw_format)
        sound = f"speech from {page.audio}" if page.audio else "no audio"
        if output is not None:
            with atomic_output(output, force=force) as tmp:
                tmp.write_text(page.html, encoding="utf-8")
            info(f"Wrote {output} ({page.size / 1e6:.1f} MB, {sound}); open it in a browser.")
        if not serve:
            return
        server = start_server(page.html.encode("utf-8"), name=(output.name if output else glb.with_suffix(".html").name), port=port)
        info(f"Serving {page.title} ({sound}); press Ctrl-C to stop.")
        typer.echo(server.url)
        try:
            server.wait()
        except KeyboardInterrupt:
            pass
        finally:
            server.stop()
        info("Stopped serving.")

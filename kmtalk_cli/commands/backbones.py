"""``kmtalk backbones``: the registered backbones, their sizes and which have bundled weights.

One wrapped block per backbone rather than a table, so it reads in an 80-column terminal."""

from __future__ import annotations

from typing import Annotated

import typer

from .common import user_errors


def backbones(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List the backbones (built-in and plugins), their presets, training stages and bundled weights."""
    with user_errors():
        import json

        import textwrap

        from rich.console import Console
        from rich.markup import escape

        from ..backbones import list_backbones
        from ..weights import DEFAULT_BACKBONE, bundled_checkpoints

        bundled = bundled_checkpoints()
        rows = []
        for b in list_backbones():
            mine = [c for c in bundled if c.backbone == b.name]
            rows.append(
                {
                    "name": b.name,
                    "description": b.description,
                    "parameters": b.parameters,
                    "presets": list(b.presets),
                    "stages": list(b.stages),
                    "bundled": [c.label for c in mine],
                    "styles": sorted({s for c in mine for s in c.styles}),
                    "animate_default": b.name == DEFAULT_BACKBONE,
                    "module": b.module,
                }
            )
        if as_json:
            typer.echo(json.dumps(rows, indent=2))
            return
        console = Console()
        width = max(40, min(console.width, 100))
        for r in rows:
            params = "?" if r["parameters"] < 0 else f"{r['parameters'] / 1e6:.2f} M parameters"
            default = " (the animate default)" if r["animate_default"] else ""
            console.print(f"[bold]{escape(r['name'])}[/]{default}  {params}", highlight=False)
            lines = [r["description"], f"presets: {', '.join(r['presets'])}; stages: {', '.join(r['stages'])}",
                     f"bundled weights: {', '.join(r['bundled']) or 'none'}"]
            for line in lines:
                console.print(escape(textwrap.fill(line, width, initial_indent="  ", subsequent_indent="  ")), highlight=False)
            console.print()
        styles = sorted({s for r in rows for s in r["styles"]})
        if styles:
            console.print(escape(textwrap.fill(f"Styles of the bundled weights (--style): {', '.join(styles)}", width)), highlight=False)
        if any(r["bundled"] for r in rows):
            console.print(escape(textwrap.fill(
                f"`kmtalk animate` uses the bundled {DEFAULT_BACKBONE} + KM unless --backbone/--no-key-motions say otherwise.", width)), highlight=False)

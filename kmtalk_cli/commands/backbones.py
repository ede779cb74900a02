"""``kmtalk backbones``: the registered backbones, their sizes and which have bundled weights."""

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

        from rich.console import Console
        from rich.table import Table

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
        table = Table(title="kmtalk backbones")
        for col in ("name", "description", "parameters (default)", "presets", "stages", "bundled weights"):
            table.add_column(col)
        for r in rows:
            params = "?" if r["parameters"] < 0 else f"{r['parameters'] / 1e6:.2f} M"
            table.add_row(r["name"], r["description"], params, ", ".join(r["presets"]), ", ".join(r["stages"]), ", ".join(r["bundled"]) or "no")
        console = Console()
        console.print(table)
        styles = sorted({s for r in rows for s in r["styles"]})
        if styles:
            console.print(f"Styles of the bundled weights (--style): {', '.join(styles)}")
        if any(r["bundled"] for r in rows):
            console.print(f"`kmtalk animate` uses the bundled {DEFAULT_BACKBONE} + KM unless --backbone/--no-key-motions say otherwise.")

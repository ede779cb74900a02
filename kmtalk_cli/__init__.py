"""kmtalk: speech-driven 3D facial animation with KMTalk key motions.

The package is imported by the CLI for ``--help``, so the public functions below are resolved
lazily: ``import kmtalk_cli`` stays instant and only pulls in what is used.
"""

from __future__ import annotations

import importlib
from typing import Any

from .version import __version__ as __version__

#: Public name -> the module that defines it.
_EXPORTS = {
    "align": ".alignment",
    "animate": ".pipeline",
    "Animation": ".pipeline",
    "load_model": ".models",
    "select_key_frames": ".keymotions",
    "Alignment": ".alignment",
    "Audio": ".audio",
    "load_audio": ".audio",
    "FaceTemplate": ".face.template",
    "bundled_template": ".face.template",
    "load_template": ".face.template",
    "load_motion": ".motion",
    "RenderOptions": ".render",
    "render_video": ".render",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

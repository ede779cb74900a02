"""Self-contained viewer pages: three.js, the player, the .glb and the speech, all inline.

A page must play from ``file://`` (browsers refuse ``fetch`` of local files there) and with no
network, so nothing is referenced: the vendored three.js bundle and ``viewer.js`` are inlined
as scripts, the model as base64 text the player decodes, the speech as a ``data:`` URL.
"""

from __future__ import annotations

import base64
import html
import io
import json
import re
import warnings
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import KmtalkWarning, OutputError
from ..version import __version__

_PLACEHOLDER = re.compile(r"@@([A-Z]+)@@")


@dataclass(frozen=True, eq=False)
class ViewerPage:
    """One page's HTML and what went into it (for the command's summary line)."""

    html: str
    title: str
    audio: Path | None

    @property
    def size(self) -> int:
        """Bytes of the UTF-8 page."""
        return len(self.html.encode("utf-8"))


def _asset(name: str) -> str:
    try:
        return resources.files(__package__).joinpath("assets", name).read_text(encoding="utf-8")
    except (FileNotFoundError, OSError):
        raise OutputError(f"The viewer asset {name} is missing from kmtalk_cli/viewer/assets; reinstall kmtalk.") from None


def encode_audio(path: str | Path, **audio_options: Any) -> bytes:
    """Speech as 16 kHz mono 16-bit WAV bytes: every browser plays it, and it stays small.

    ``audio_options`` describe headerless PCM (see :func:`kmtalk_cli.audio.load_audio`).
    """
    from ..audio import load_audio, write_wav

    buffer = io.BytesIO()
    write_wav(load_audio(path, **audio_options), buffer)
    return buffer.getvalue()


def _script_json(value: object) -> str:
    """JSON that cannot close the <script> element it sits in."""
    return json.dumps(value, separators=(",", ":")).replace("<", "\\u003c")


def build_page(glb: bytes, *, title: str, audio_wav: bytes | None = None, info: dict | None = None) -> str:
    """The HTML of a page that plays ``glb`` (and ``audio_wav``, if given) offline.

    ``info`` is the .glb's root extras (fps, frames, source), shown in the page's header.
    """
    info = info or {}
    config = {key: info[key] for key in ("fps", "frames", "source") if isinstance(info.get(key), (int, float, str))}
    audio = "" if audio_wav is None else f' src="data:audio/wav;base64,{base64.b64encode(audio_wav).decode("ascii")}"'
    values = {
        "VERSION": __version__,
        "TITLE": html.escape(title),
        "AUDIO": audio,
        "CONFIG": _script_json(config),
        "GLB": base64.b64encode(glb).decode("ascii"),
        "THREE": _asset("three-bundle.min.js"),
        "VIEWER": _asset("viewer.js"),
    }
    # One pass, so text inserted for one placeholder is never scanned for another.
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], _asset("page.html"))


def viewer_page(glb_path: str | Path, audio_path: str | Path | None = None, **audio_options: Any) -> ViewerPage:
    """A page for a .glb file, with ``audio_path`` or else the audio its extras name, if it exists."""
    from ..export.gltf import read_glb

    glb_path = Path(glb_path)
    content = read_glb(glb_path)
    audio = Path(audio_path) if audio_path is not None else None
    recorded = content.extras.get("audio")
    if audio is None and isinstance(recorded, str) and recorded:
        candidate = glb_path.parent / recorded
        if candidate.is_file():
            audio = candidate
        else:
            warnings.warn(
                f"{glb_path.name} names the audio {recorded}, which is not at {candidate}; the page will be silent "
                "(pass --audio).",
                KmtalkWarning,
                stacklevel=2,
            )
    wav = encode_audio(audio, **audio_options) if audio is not None else None
    page = build_page(glb_path.read_bytes(), title=glb_path.name, audio_wav=wav, info=content.extras)
    return ViewerPage(html=page, title=glb_path.name, audio=audio)

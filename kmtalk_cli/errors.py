"""The error types the library raises; the CLI turns each into one line on stderr.

Every message is a full sentence a user can act on, so the CLI never needs a traceback.
"""

from __future__ import annotations

import errno


class KmtalkError(Exception):
    """Base class: a problem with the user's input or environment, not a bug."""


class AudioError(KmtalkError):
    """Audio that cannot be read or is unusable (missing, not audio, empty, too short, NaN)."""


class MotionError(KmtalkError):
    """A motion array with the wrong shape, vertex count or values."""


class TemplateError(KmtalkError):
    """A template mesh or region file that cannot be loaded."""


class RenderError(KmtalkError):
    """Rendering or video encoding failed."""


class OutputError(KmtalkError):
    """An output that cannot be written (missing directory, no permission, exists without --force)."""


class KmtalkWarning(UserWarning):
    """Something worth telling the user that does not stop the run (clipping, silence, fallbacks)."""


class AlignmentError(KmtalkError):
    """Speech that cannot be aligned to phones: an unusable transcript, TextGrid or aligner."""


class DatasetError(KmtalkError):
    """A dataset directory that does not follow the templates.pkl + vertices_npy + wav layout."""


class ModelError(KmtalkError):
    """A backbone, configuration or checkpoint that cannot be used (unknown name, mismatch, corrupt file)."""


def os_problem(exc: OSError) -> str:
    """One sentence for an operating-system error the library did not turn into a KmtalkError."""
    where = f" ({exc.filename})" if exc.filename else ""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return f"The disk is full (or a file size limit was reached){where}; no output was written."
    return f"{exc.strerror or exc}{where}."

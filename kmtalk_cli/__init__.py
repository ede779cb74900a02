"""kmtalk: speech-driven 3D facial animation with KMTalk key motions.

The package is imported by the CLI for ``--help``, so heavy modules (torch, moderngl) are only
imported by the functions that need them.
"""

from .version import __version__ as __version__

"""Write a ``.npy`` array piece by piece, so a long motion is never whole in memory.

The header states the final shape up front; rows are appended as they are computed (each piece
checked finite), and :meth:`NpyRowWriter.close` refuses a file whose row count does not match it
(a half-written array must never look complete).
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType

import numpy as np

from .errors import OutputError
from .validate import require_finite


class NpyRowWriter:
    """A (rows, *row_shape) float32 ``.npy`` at ``path``, filled by :meth:`write` in row order."""

    def __init__(self, path: Path | str, rows: int, row_shape: tuple[int, ...], *, what: str = "The motion") -> None:
        self.path = Path(path)
        self.what = what
        self.shape = (rows, *row_shape)
        self.written = 0
        self._width = int(np.prod(row_shape))
        self._fh = open(self.path, "wb")  # noqa: SIM115 - closed by close()/__exit__
        header = {"descr": np.lib.format.dtype_to_descr(np.dtype("<f4")), "fortran_order": False, "shape": self.shape}
        np.lib.format.write_array_header_1_0(self._fh, header)

    def write(self, rows: np.ndarray) -> None:
        """Append rows of shape (n, *row_shape)."""
        rows = np.ascontiguousarray(rows, dtype="<f4").reshape(-1, self._width)
        if not np.isfinite(np.add.reduce(rows, axis=None)):  # one pass; NaN and infinity survive a sum
            require_finite(rows, self.what)  # no NaN or infinity ever reaches a written file (this names the rows)
        if self.written + len(rows) > self.shape[0]:
            raise OutputError(f"{self.path}: more rows than the {self.shape[0]} announced.")
        self._fh.write(rows.data)
        self.written += len(rows)

    def close(self) -> None:
        self._fh.close()
        if self.written != self.shape[0]:
            raise OutputError(f"{self.path}: {self.written} of {self.shape[0]} rows were written.")

    def __enter__(self) -> NpyRowWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        if kind is None:
            self.close()
        else:
            self._fh.close()

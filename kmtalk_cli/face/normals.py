"""Smooth (area-weighted) vertex normals of a triangle mesh: the one implementation kmtalk uses.

The renderers recompute them every frame and the glTF export writes them for the rest shape and
each morph target, so they share this code and agree on every normal.
"""

from __future__ import annotations

import numpy as np

from ..errors import KmtalkError


class SmoothNormals:
    """Area-weighted per-vertex normals for one fixed triangle list, recomputed per frame.

    The vertex ← face incidence is a sparse matrix built once, so each frame costs one gather,
    one cross product and one sparse product instead of a Python loop or ``np.add.at``. A vertex
    on no triangle (or only on degenerate ones) gets +Z, so every normal is unit length.
    """

    def __init__(self, faces: np.ndarray, n_vertices: int, *, dtype: type = np.float32) -> None:
        import scipy.sparse  # imported here: the CLI imports the render package for --help

        self.n_vertices = int(n_vertices)
        self.dtype = np.dtype(dtype)
        faces = np.ascontiguousarray(faces, dtype=np.int64)
        self.faces = faces
        n_faces = faces.shape[0]
        rows = faces.ravel()
        cols = np.repeat(np.arange(n_faces), 3)
        self._incidence = scipy.sparse.csr_matrix(
            (np.ones(rows.size, dtype=self.dtype), (rows, cols)), shape=(n_vertices, n_faces)
        )

    def check(self, vertices: np.ndarray) -> None:
        """Raise a :class:`KmtalkError` subclass unless ``vertices`` is (V, 3) for this mesh."""
        if vertices.shape != (self.n_vertices, 3):
            from ..errors import RenderError

            raise RenderError(
                f"A frame has vertex array shape {vertices.shape}; the mesh needs ({self.n_vertices}, 3)."
            )

    def face_normals(self, vertices: np.ndarray) -> np.ndarray:
        """Unnormalised face normals (F, 3): their length is twice the triangle's area."""
        v = np.asarray(vertices, dtype=self.dtype)
        tri = v[self.faces]
        return np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])

    def __call__(self, vertices: np.ndarray, *, normalise: bool = True) -> np.ndarray:
        """Vertex normals (V, 3); unit length unless ``normalise`` is False."""
        self.check(vertices)
        normals = np.asarray(self._incidence @ self.face_normals(vertices), dtype=self.dtype)
        if normalise:
            length = np.sqrt(np.einsum("ij,ij->i", normals, normals))
            flat = length < 1e-20
            if flat.any():
                normals[flat] = (0.0, 0.0, 1.0)
                length[flat] = 1.0
            normals /= length[:, None]
        return normals


def vertex_normals(vertices: np.ndarray, faces: np.ndarray, *, dtype: type = np.float64) -> np.ndarray:
    """Unit area-weighted vertex normals (V, 3) of one mesh shape (see :class:`SmoothNormals`)."""
    vertices = np.asarray(vertices)
    if vertices.ndim != 2 or vertices.shape[1] != 3:
        raise KmtalkError(f"Vertices must be (V, 3) to compute normals, not {vertices.shape}.")
    return SmoothNormals(faces, len(vertices), dtype=dtype)(vertices)

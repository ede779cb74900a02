"""The one vertex-normal implementation, shared by the renderers and the glTF export."""

from __future__ import annotations

import numpy as np
import trimesh

from kmtalk_cli.export import gltf
from kmtalk_cli.face.normals import SmoothNormals, vertex_normals
from kmtalk_cli.render import shading


def test_sphere_normals_point_outwards_and_are_unit():
    mesh = trimesh.creation.icosphere(subdivisions=2)
    v = np.asarray(mesh.vertices) * 0.1
    n = vertex_normals(v, np.asarray(mesh.faces))
    np.testing.assert_allclose(np.linalg.norm(n, axis=1), 1.0, atol=1e-12)
    assert (np.einsum("ij,ij->i", n, v / np.linalg.norm(v, axis=1, keepdims=True)) > 0.99).all()
    # A vertex on no triangle still gets a unit normal (+Z), as glTF requires.
    lonely = vertex_normals(np.vstack([v, [[0.0, 0.0, 1.0]]]), np.asarray(mesh.faces))
    np.testing.assert_array_equal(lonely[-1], [0.0, 0.0, 1.0])


def test_renderers_and_export_share_one_implementation():
    assert gltf.vertex_normals is vertex_normals
    assert shading.SmoothNormals is SmoothNormals
    mesh = trimesh.creation.icosphere(subdivisions=1)
    v, f = np.asarray(mesh.vertices), np.asarray(mesh.faces)
    np.testing.assert_allclose(SmoothNormals(f, len(v))(v), vertex_normals(v, f), atol=1e-6)

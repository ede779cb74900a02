"""Face templates: a rest-shape mesh plus the named vertex regions metrics and the rig use.

Motion files are plain per-vertex positions, so everything that gives them meaning (which
vertices are lips, where the faces are, which vertex is landmark 30) lives here. Vertex order
is sacred: every loader keeps the file's order, because motion arrays index vertices by it.

Sources:

* the bundled head (``assets/head.npz``, built by ``tools/build_head_template.py``);
* a user ``.ply``/``.obj`` mesh, with region files from a ``regions`` directory;
* a VOCASET/BIWI ``templates.pkl`` (one rest shape per subject), read with an unpickler that
  can only rebuild numpy arrays, so a hostile pickle cannot run code;
* an ``.npz`` in kmtalk's own format (what :func:`save_template` writes).
"""

from __future__ import annotations

import dataclasses
import functools
import io
import json
import pickle
import re
import warnings
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import MappingProxyType

import numpy as np

from ..atomic import atomic_output
from ..errors import KmtalkWarning, TemplateError

#: Name of the bundled head.
BUNDLED_NAME = "kmtalk-head"
#: CodeTalker's region file names and the kmtalk region each one stands for.
REGION_FILE_ALIASES = {"lve": "lips", "fdd": "upper_face"}
#: Meshes looked for beside a ``templates.pkl`` to borrow faces from (VOCASET, BIWI, generic).
COMPANION_MESHES = ("FLAME_sample.ply", "BIWI.ply", "template.ply", "template.obj")
MESH_SUFFIXES = (".ply", ".obj")

_EMPTY_FACES = np.zeros((0, 3), dtype=np.int32)


def _frozen(array: np.ndarray) -> np.ndarray:
    """A read-only copy, so a cached template cannot be changed by one of its users."""
    out = np.array(array, copy=True)
    out.flags.writeable = False
    return out


def _as_indices(values: object, n_vertices: int, what: str) -> np.ndarray:
    """Sorted unique int64 vertex indices, or a TemplateError naming ``what`` and the bad index."""
    arr = np.asarray(values)
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if arr.dtype.kind not in "iu":
        if arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
        else:
            raise TemplateError(f"{what} holds non-integer vertex indices.")
    arr = np.unique(arr.astype(np.int64).ravel())
    if arr[0] < 0 or arr[-1] >= n_vertices:
        bad = int(arr[0] if arr[0] < 0 else arr[-1])
        raise TemplateError(f"{what} has vertex index {bad}, outside 0..{n_vertices - 1} for this {n_vertices}-vertex mesh.")
    return arr


@dataclass(frozen=True, eq=False)
class HeadPart:
    """A separate mesh of the head (teeth, tongue, mouth cavity, an eyeball, the scalp).

    ``jaw`` (N,) blends each vertex between the skull (0) and the jaw (1); ``weld`` (N,) names
    the face vertex a part vertex is glued to (-1: none), so seams stay closed as the face
    moves; ``follow``/``follow_weight`` (mouth cavity) let inner vertices share a fading part
    of a lip vertex's own deformation. ``colours`` (N, 3) uint8 is the albedo.
    """

    vertices: np.ndarray
    faces: np.ndarray
    colours: np.ndarray
    jaw: np.ndarray
    weld: np.ndarray
    follow: np.ndarray | None = None
    follow_weight: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.vertices)
        set_ = object.__setattr__
        set_(self, "vertices", _frozen(np.asarray(self.vertices, dtype=np.float32).reshape(n, 3)))
        set_(self, "faces", _frozen(np.asarray(self.faces, dtype=np.int32).reshape(-1, 3)))
        set_(self, "colours", _frozen(np.asarray(self.colours, dtype=np.uint8).reshape(n, 3)))
        set_(self, "jaw", _frozen(np.asarray(self.jaw, dtype=np.float32).reshape(n)))
        set_(self, "weld", _frozen(np.asarray(self.weld, dtype=np.int64).reshape(n)))
        if self.follow is not None:
            set_(self, "follow", _frozen(np.asarray(self.follow, dtype=np.int64).reshape(n)))
            set_(self, "follow_weight", _frozen(np.asarray(self.follow_weight, dtype=np.float32).reshape(n)))
        if self.faces.size and (self.faces.min() < 0 or self.faces.max() >= n):
            raise TemplateError("A head part has a face referring to a vertex it does not have.")

    @property
    def n_vertices(self) -> int:
        return int(self.vertices.shape[0])


#: Arrays of a part in an npz: ``part_<name>_<field>``.
_PART_FIELDS = ("vertices", "faces", "colours", "jaw", "weld", "follow", "follow_weight")


@dataclass(frozen=True, eq=False)
class FaceTemplate:
    """A rest-shape mesh with named vertex regions; arrays are read-only.

    ``weights`` (per-vertex soft weights such as ``jaw``) and ``anchors`` (named 3-D points such
    as ``jaw_hinge``) are optional extras the bundled head carries for the articulatory rig;
    ``parts`` are its separate meshes (teeth, tongue, mouth cavity, eyes, scalp), which never
    change the face's own vertices.
    """

    vertices: np.ndarray
    faces: np.ndarray
    regions: Mapping[str, np.ndarray]
    landmarks: np.ndarray | None = None
    name: str = BUNDLED_NAME
    source: str = ""
    weights: Mapping[str, np.ndarray] = field(default_factory=dict)
    anchors: Mapping[str, np.ndarray] = field(default_factory=dict)
    parts: Mapping[str, HeadPart] = field(default_factory=dict)

    def __post_init__(self) -> None:
        label = f"Template {self.name}" + (f" ({self.source})" if self.source else "")
        verts = np.asarray(self.vertices)
        if verts.ndim == 1 and verts.size % 3 == 0:
            verts = verts.reshape(-1, 3)
        if verts.ndim != 2 or verts.shape[1] != 3:
            raise TemplateError(f"{label} has vertices of shape {verts.shape}; expected (V, 3).")
        if verts.shape[0] == 0:
            raise TemplateError(f"{label} has no vertices.")
        if verts.dtype.kind not in "fiu" or not np.all(np.isfinite(verts)):
            raise TemplateError(f"{label} has non-numeric, NaN or infinite vertex coordinates.")
        n = verts.shape[0]

        faces = np.asarray(self.faces) if self.faces is not None else _EMPTY_FACES
        if faces.size == 0:
            faces = _EMPTY_FACES
        if faces.ndim != 2 or faces.shape[1] != 3 or faces.dtype.kind not in "iu":
            raise TemplateError(f"{label} has faces of shape {faces.shape} ({faces.dtype}); expected (F, 3) integers.")
        if faces.size and (faces.min() < 0 or faces.max() >= n):
            raise TemplateError(f"{label} has a face referring to vertex {int(faces.max())}, but only {n} vertices.")

        regions = {str(k): _frozen(_as_indices(v, n, f"{label} region '{k}'")) for k, v in dict(self.regions).items()}

        landmarks = None
        if self.landmarks is not None:
            lm = np.asarray(self.landmarks)
            if lm.ndim != 1 or lm.dtype.kind not in "iu":
                raise TemplateError(f"{label} landmarks must be a 1-D array of vertex indices.")
            if lm.size and (lm.min() < 0 or lm.max() >= n):
                raise TemplateError(f"{label} has landmark vertex {int(lm.max())}, outside 0..{n - 1}.")
            landmarks = _frozen(lm.astype(np.int64))

        weights = {}
        for key, w in dict(self.weights).items():
            w = np.asarray(w, dtype=np.float32)
            if w.shape != (n,):
                raise TemplateError(f"{label} weight '{key}' has shape {w.shape}; expected ({n},).")
            weights[str(key)] = _frozen(w)
        anchors = {}
        for key, p in dict(self.anchors).items():
            p = np.asarray(p, dtype=np.float32)
            if p.shape != (3,):
                raise TemplateError(f"{label} anchor '{key}' has shape {p.shape}; expected (3,).")
            anchors[str(key)] = _frozen(p)

        set_ = object.__setattr__
        set_(self, "vertices", _frozen(verts.astype(np.float32)))
        set_(self, "faces", _frozen(faces.astype(np.int32)))
        set_(self, "regions", MappingProxyType(regions))
        set_(self, "landmarks", landmarks)
        set_(self, "weights", MappingProxyType(weights))
        set_(self, "anchors", MappingProxyType(anchors))
        parts = dict(self.parts)
        for key, part in parts.items():
            if part.weld.size and part.weld.max() >= n:
                raise TemplateError(f"{label} part '{key}' is welded to vertex {int(part.weld.max())}, outside 0..{n - 1}.")
            if part.follow is not None and part.follow.size and part.follow.max() >= n:
                raise TemplateError(f"{label} part '{key}' follows vertex {int(part.follow.max())}, outside 0..{n - 1}.")
        set_(self, "parts", MappingProxyType(parts))

    @property
    def n_vertices(self) -> int:
        """Vertex count, which every motion array for this template must match."""
        return int(self.vertices.shape[0])

    @property
    def n_faces(self) -> int:
        """Face count; 0 for a point-only template."""
        return int(self.faces.shape[0])

    def region(self, name: str) -> np.ndarray:
        """Vertex indices of one region, or a TemplateError that lists the ones there are."""
        try:
            return self.regions[name]
        except KeyError:
            have = ", ".join(sorted(self.regions)) or "none"
            raise TemplateError(f"Template {self.name} has no region '{name}'; available regions: {have}.") from None

    def with_vertices(self, vertices: np.ndarray) -> FaceTemplate:
        """Same topology, regions and weights on a new rest shape (e.g. one subject's face).

        Anchors and parts are dropped: they are placed on the old shape and would be silently wrong.
        """
        verts = np.asarray(vertices)
        if verts.ndim == 1 and verts.size == 3 * self.n_vertices:
            verts = verts.reshape(-1, 3)
        if verts.shape != self.vertices.shape:
            raise TemplateError(
                f"New rest shape has shape {verts.shape}, but template {self.name} needs {self.vertices.shape}."
            )
        return dataclasses.replace(self, vertices=verts, anchors={}, parts={})


# --------------------------------------------------------------------------------------------
# npz (kmtalk's own format, also the bundled asset)
# --------------------------------------------------------------------------------------------


def _from_npz(data: Mapping[str, np.ndarray], *, name: str, source: str) -> FaceTemplate:
    """Build a template from the arrays of an npz in kmtalk's format."""
    if "vertices" not in data:
        raise TemplateError(f"Template file {source} has no 'vertices' array.")
    info: dict = {}
    if "info" in data:
        try:
            raw = np.asarray(data["info"]).reshape(-1)
            info = json.loads(str(raw[0])) if raw.size == 1 else {}
        except (ValueError, TypeError):
            info = {}
    return FaceTemplate(
        vertices=data["vertices"],
        faces=data["faces"] if "faces" in data else _EMPTY_FACES,
        regions={k[len("region_"):]: data[k] for k in data if k.startswith("region_")},
        landmarks=data["landmarks"] if "landmarks" in data else None,
        name=str(info.get("name", name)),
        source=source,
        weights={k[len("weight_"):]: data[k] for k in data if k.startswith("weight_")},
        anchors={k[len("anchor_"):]: data[k] for k in data if k.startswith("anchor_")},
        parts=_parts_from_npz(data, source),
    )


def _parts_from_npz(data: Mapping[str, np.ndarray], source: str) -> dict[str, HeadPart]:
    """The ``part_<name>_<field>`` arrays of an npz, grouped into :class:`HeadPart` objects."""
    names = sorted({k[len("part_"): -len("_vertices")] for k in data if k.startswith("part_") and k.endswith("_vertices")})
    parts = {}
    for name in names:
        fields = {f: data.get(f"part_{name}_{f}") for f in _PART_FIELDS}
        if any(fields[f] is None for f in _PART_FIELDS[:5]):
            raise TemplateError(f"Template file {source} has an incomplete head part '{name}'.")
        try:
            parts[name] = HeadPart(**fields)
        except (ValueError, TypeError) as exc:
            raise TemplateError(f"Template file {source} has a malformed head part '{name}' ({exc}).") from None
    return parts


def _read_npz(fh: object, where: str) -> dict[str, np.ndarray]:
    """All arrays of an npz, without ever allowing pickled objects."""
    try:
        loaded = np.load(fh, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise ValueError("it holds a single array, not named arrays")
        with loaded as npz:
            return {k: npz[k] for k in npz.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise TemplateError(f"Template file {where} is not a readable kmtalk .npz template ({exc}).") from None


@functools.lru_cache(maxsize=1)
def bundled_template() -> FaceTemplate:
    """The bundled head (metres, +Y up, +Z out of the face); loaded once and shared read-only."""
    asset = resources.files("kmtalk_cli.face").joinpath("assets").joinpath("head.npz")
    try:
        payload = asset.read_bytes()
    except (FileNotFoundError, OSError):
        raise TemplateError("The bundled head template (kmtalk_cli/face/assets/head.npz) is missing; reinstall kmtalk.") from None
    return _from_npz(_read_npz(io.BytesIO(payload), "bundled head.npz"), name=BUNDLED_NAME, source="bundled")


# --------------------------------------------------------------------------------------------
# Meshes and region files
# --------------------------------------------------------------------------------------------


def _read_obj(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Minimal OBJ reader: ``v`` lines in file order, ``f`` polygons fanned into triangles.

    Written by hand because general loaders may re-index vertices to merge UVs/normals, and
    vertex order must match the motion files exactly.
    """
    verts: list[list[float]] = []
    faces: list[list[int]] = []
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise TemplateError(f"Template mesh {path} could not be read ({exc.strerror or exc}).") from None
    for lineno, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        try:
            if parts[0] == "v":
                verts.append([float(parts[1]), float(parts[2]), float(parts[3])])
            elif parts[0] == "f":
                idx = []
                for token in parts[1:]:
                    k = int(token.split("/")[0])
                    idx.append(k - 1 if k > 0 else len(verts) + k)
                if len(idx) < 3:
                    raise ValueError("face with fewer than 3 vertices")
                faces.extend([idx[0], idx[i], idx[i + 1]] for i in range(1, len(idx) - 1))
        except (ValueError, IndexError) as exc:
            raise TemplateError(f"Template mesh {path} has an unreadable line {lineno} ({exc}).") from None
    v = np.asarray(verts, dtype=np.float64).reshape(-1, 3)
    f = np.asarray(faces, dtype=np.int64).reshape(-1, 3)
    if f.size and (f.min() < 0 or f.max() >= len(v)):
        raise TemplateError(f"Template mesh {path} has a face that refers to a vertex it does not define.")
    return v, f


def _read_ply(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """PLY via trimesh with processing off, so vertices are neither merged nor reordered."""
    import trimesh

    try:
        loaded = trimesh.load(str(path), file_type="ply", process=False)
    except Exception as exc:  # trimesh raises many types for malformed files
        raise TemplateError(f"Template mesh {path} could not be read as a PLY mesh ({exc}).") from None
    if isinstance(loaded, trimesh.Scene):
        geoms = list(loaded.geometry.values())
        if len(geoms) != 1:
            raise TemplateError(f"Template mesh {path} holds {len(geoms)} meshes; expected exactly one.")
        loaded = geoms[0]
    vertices = np.asarray(getattr(loaded, "vertices", np.zeros((0, 3))), dtype=np.float64)
    faces = getattr(loaded, "faces", None)
    faces = _EMPTY_FACES if faces is None else np.asarray(faces, dtype=np.int64).reshape(-1, 3)
    return vertices, faces


def read_mesh(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Vertices and triangle faces of a ``.ply``/``.obj`` file, in file order."""
    path = Path(path)
    if not path.is_file():
        raise TemplateError(f"Template mesh {path} does not exist.")
    suffix = path.suffix.lower()
    if suffix == ".obj":
        v, f = _read_obj(path)
    elif suffix == ".ply":
        v, f = _read_ply(path)
    else:
        raise TemplateError(f"Template mesh {path} is not a .ply or .obj file.")
    if len(v) == 0:
        raise TemplateError(f"Template mesh {path} has no vertices.")
    return v, f


_INDEX_SPLIT = re.compile(r"[\s,;]+")


def read_region_file(path: Path, n_vertices: int) -> np.ndarray:
    """Indices from a CodeTalker-style region file (integers separated by commas/whitespace)."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise TemplateError(f"Region file {path} could not be read ({exc.strerror or exc}).") from None
    tokens = [t for t in _INDEX_SPLIT.split(text.strip().strip("[]")) if t]
    values = []
    for token in tokens:
        try:
            values.append(int(token))
        except ValueError:
            raise TemplateError(f"Region file {path} has '{token}', which is not a vertex index.") from None
    for value in values:
        if value < 0 or value >= n_vertices:
            raise TemplateError(
                f"Region file {path} has vertex index {value}, outside 0..{n_vertices - 1} for this {n_vertices}-vertex template."
            )
    return np.unique(np.asarray(values, dtype=np.int64))


def read_regions_dir(directory: Path, n_vertices: int) -> dict[str, np.ndarray]:
    """Every ``<name>.txt`` in ``directory`` as a region (``lve``→lips, ``fdd``→upper_face)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise TemplateError(f"Regions directory {directory} does not exist.")
    regions: dict[str, np.ndarray] = {}
    files = sorted(directory.glob("*.txt"))
    # Real names first, so an explicit lips.txt wins over CodeTalker's lve.txt alias.
    files.sort(key=lambda p: p.stem in REGION_FILE_ALIASES)
    for file in files:
        name = REGION_FILE_ALIASES.get(file.stem, file.stem)
        if name in regions:
            continue
        regions[name] = read_region_file(file, n_vertices)
    return regions


def _default_regions_dir(path: Path) -> Path | None:
    """``<stem>.regions/`` beside the file, else ``regions/`` beside it, else nothing."""
    for candidate in (path.with_name(f"{path.stem}.regions"), path.parent / "regions"):
        if candidate.is_dir():
            return candidate
    return None


# --------------------------------------------------------------------------------------------
# templates.pkl (VOCASET / BIWI)
# --------------------------------------------------------------------------------------------


def _safe_pickle_globals() -> dict[tuple[str, str], object]:
    """The only callables a templates.pkl may name: numpy array and dtype reconstruction."""
    try:
        from numpy._core import multiarray, numeric
    except ImportError:  # numpy < 2
        from numpy.core import multiarray, numeric  # type: ignore[no-redef]
    import _codecs
    from collections import OrderedDict

    table: dict[tuple[str, str], object] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): _codecs.encode,
        ("collections", "OrderedDict"): OrderedDict,
    }
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        table[(module, "_reconstruct")] = multiarray._reconstruct
        table[(module, "scalar")] = multiarray.scalar
    for module in ("numpy.core.numeric", "numpy._core.numeric"):
        table[(module, "_frombuffer")] = numeric._frombuffer
    return table


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Refuses every global except numpy array reconstruction, so no code can be run."""

    def __init__(self, fh: io.BufferedIOBase) -> None:
        super().__init__(fh, encoding="latin1")
        self._allowed = _safe_pickle_globals()

    def find_class(self, module: str, name: str) -> object:
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"{module}.{name} is not allowed") from None


def read_templates_pkl(path: Path) -> dict[str, np.ndarray]:
    """Subject -> (V, 3) rest shape from a VOCASET/BIWI ``templates.pkl``, safely."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            data = _ArrayOnlyUnpickler(fh).load()
    except pickle.UnpicklingError as exc:
        raise TemplateError(f"Refusing to load {path}: it is not a plain templates.pkl of arrays ({exc}).") from None
    except (OSError, EOFError, ValueError, TypeError, AttributeError, IndexError, ImportError, KeyError) as exc:
        raise TemplateError(f"Template file {path} is not a readable templates.pkl ({exc}).") from None
    if not isinstance(data, dict) or not data:
        raise TemplateError(f"Template file {path} does not hold a subject -> vertices dictionary.")
    out: dict[str, np.ndarray] = {}
    for key, value in data.items():
        subject = key.decode("latin1") if isinstance(key, bytes) else str(key)
        arr = np.asarray(value) if isinstance(value, np.ndarray) else None
        if arr is None or arr.dtype.kind not in "fiu" or arr.size % 3:
            raise TemplateError(f"Template file {path} has an entry '{subject}' that is not a (V, 3) vertex array.")
        out[subject] = arr.reshape(-1, 3)
    return out


def _companion_faces(path: Path, n_vertices: int) -> np.ndarray | None:
    """Faces from a known mesh beside a templates.pkl, when its vertex count matches."""
    for name in COMPANION_MESHES:
        candidate = path.parent / name
        if not candidate.is_file():
            continue
        try:
            v, f = read_mesh(candidate)
        except TemplateError:
            continue
        if len(v) == n_vertices and len(f):
            return f
    return None


def _load_pkl(path: Path, subject: str | None, faces_from: FaceTemplate | None) -> tuple[FaceTemplate, FaceTemplate | None]:
    """One subject of a templates.pkl, plus the template whose topology it borrowed (if any)."""
    shapes = read_templates_pkl(path)
    names = sorted(shapes)
    if subject is None:
        if len(names) > 1:
            raise TemplateError(f"{path} holds {len(names)} subjects; choose one with --subject: {', '.join(names)}.")
        subject = names[0]
    if subject not in shapes:
        raise TemplateError(f"Subject '{subject}' is not in {path}; available subjects: {', '.join(names)}.")
    vertices = shapes[subject]
    donor = faces_from if faces_from is not None and faces_from.n_vertices == len(vertices) else None
    faces = donor.faces if donor is not None else _companion_faces(path, len(vertices))
    if faces is None:
        warnings.warn(
            f"No faces found for {path} ({len(vertices)} vertices); the template has points only.",
            KmtalkWarning,
            stacklevel=3,
        )
        faces = _EMPTY_FACES
    template = FaceTemplate(
        vertices=vertices,
        faces=faces,
        regions=dict(donor.regions) if donor is not None else {},
        landmarks=donor.landmarks if donor is not None else None,
        name=f"{path.stem}:{subject}",
        source=str(path),
        weights=dict(donor.weights) if donor is not None else {},
    )
    return template, donor


# --------------------------------------------------------------------------------------------
# Public entry points
# --------------------------------------------------------------------------------------------


def load_template(
    spec: str | Path | None = None,
    *,
    subject: str | None = None,
    regions_dir: Path | None = None,
    faces_from: FaceTemplate | None = None,
) -> FaceTemplate:
    """Load a template: ``None`` (or ``"bundled"``) for the bundled head, else a file path.

    ``.ply``/``.obj`` keep their vertex order; ``.pkl`` is a VOCASET/BIWI templates.pkl
    (``subject`` picks the entry, faces come from ``faces_from`` or a companion mesh);
    ``.npz`` is kmtalk's own format. Region files come from ``regions_dir`` or, if not given,
    from ``<stem>.regions/`` or ``regions/`` beside the file.
    """
    if spec is None or (isinstance(spec, str) and spec in ("bundled", BUNDLED_NAME) and not Path(spec).exists()):
        if subject is not None:
            raise TemplateError("--subject only applies to a templates.pkl, not the bundled head.")
        template = bundled_template()
        if regions_dir is not None:
            template = dataclasses.replace(
                template, regions={**template.regions, **read_regions_dir(regions_dir, template.n_vertices)}
            )
        return template

    path = Path(spec).expanduser()
    if not path.exists():
        raise TemplateError(f"Template file {path} does not exist.")
    if path.is_dir():
        raise TemplateError(f"Template {path} is a directory; give a .ply, .obj, .pkl or .npz file.")
    suffix = path.suffix.lower()
    if subject is not None and suffix != ".pkl":
        raise TemplateError(f"--subject only applies to a templates.pkl, not {path.name}.")

    if suffix in MESH_SUFFIXES:
        vertices, faces = read_mesh(path)
        template = FaceTemplate(vertices=vertices, faces=faces, regions={}, name=path.stem, source=str(path))
    elif suffix == ".pkl":
        template, _ = _load_pkl(path, subject, faces_from)
    elif suffix == ".npz":
        with open(path, "rb") as fh:
            template = _from_npz(_read_npz(fh, str(path)), name=path.stem, source=str(path))
    else:
        raise TemplateError(f"Template {path} has an unsupported extension '{path.suffix}'; use .ply, .obj, .pkl or .npz.")

    folder = Path(regions_dir) if regions_dir is not None else _default_regions_dir(path)
    if folder is not None:
        extra = read_regions_dir(folder, template.n_vertices)
        template = dataclasses.replace(template, regions={**template.regions, **extra})
    return template


def _write_obj(template: FaceTemplate, path: Path) -> None:
    """Plain OBJ: one ``v`` line per vertex in order, 1-based ``f`` lines."""
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(f"# {template.name}: {template.n_vertices} vertices, {template.n_faces} faces (kmtalk)\n")
        np.savetxt(fh, template.vertices, fmt="v %.9g %.9g %.9g")
        if template.n_faces:
            np.savetxt(fh, template.faces.astype(np.int64) + 1, fmt="f %d %d %d")


def _write_ply(template: FaceTemplate, path: Path) -> None:
    """Binary PLY through trimesh (no processing, so order and count are kept)."""
    import trimesh

    if template.n_faces:
        geom = trimesh.Trimesh(vertices=template.vertices, faces=template.faces, process=False)
    else:
        geom = trimesh.PointCloud(template.vertices)
    path.write_bytes(geom.export(file_type="ply"))


def save_template(template: FaceTemplate, path: str | Path, *, force: bool = False) -> Path:
    """Write ``template`` to ``.npz`` (everything) or ``.ply``/``.obj`` (+ ``<stem>.regions/``).

    Each file is written atomically; for meshes the regions go beside them as CodeTalker-style
    text files, which :func:`load_template` picks up again.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".npz", *MESH_SUFFIXES):
        raise TemplateError(f"Cannot save a template as '{path.suffix}'; use .npz, .ply or .obj.")
    if suffix == ".npz":
        arrays: dict[str, np.ndarray] = {
            "vertices": template.vertices,
            "faces": template.faces,
            "info": np.asarray(json.dumps({"name": template.name, "source": template.source})),
        }
        if template.landmarks is not None:
            arrays["landmarks"] = template.landmarks.astype(np.int32)
        for key, idx in template.regions.items():
            arrays[f"region_{key}"] = np.asarray(idx, dtype=np.int32)
        for key, w in template.weights.items():
            arrays[f"weight_{key}"] = w
        for key, p in template.anchors.items():
            arrays[f"anchor_{key}"] = p
        for key, part in template.parts.items():
            for f in _PART_FIELDS:
                value = getattr(part, f)
                if value is not None:
                    arrays[f"part_{key}_{f}"] = value
        with atomic_output(path, force=force) as tmp:
            np.savez_compressed(tmp, **arrays)
        return path

    with atomic_output(path, force=force) as tmp:
        (_write_obj if suffix == ".obj" else _write_ply)(template, tmp)
    if template.regions:
        folder = path.with_name(f"{path.stem}.regions")
        folder.mkdir(exist_ok=True)
        for key, idx in template.regions.items():
            with atomic_output(folder / f"{key}.txt", force=True) as tmp:
                tmp.write_text(" ".join(str(int(i)) for i in idx) + "\n", encoding="utf-8")
    return path

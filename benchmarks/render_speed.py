"""Render speed: frames per second per renderer and panel size, render-only and end to end.

End to end means what ``kmtalk render`` does: render, check, encode H.264 with AAC audio
muxed, and move the finished mp4 into place. The "whole head" rows draw what ``kmtalk render``
draws on the bundled head: the face with its teeth, tongue, mouth cavity, eyes and scalp posed
per frame, anti-aliased by 2×2 supersampling. The mesh is the bundled head (or a ~5k-vertex
ellipsoid if the head is missing) with its jaw swinging, so every frame differs.

    python benchmarks/render_speed.py [--frames 300] [--sizes 512,800] [--renderers gl,software]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import soundfile as sf

from kmtalk_cli.render import RenderOptions, frame_camera, make_renderer, render_video

TARGETS = {"gl": (800, 100.0), "software": (800, 5.0)}  # renderer: (size, end-to-end fps)


def load_mesh() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, str]:
    """Vertices, faces, per-vertex jaw weight, jaw hinge point, and a description."""
    try:
        from kmtalk_cli.face.template import bundled_template

        template = bundled_template()
        vertices = np.asarray(template.vertices, dtype=np.float32)
        faces = np.asarray(template.faces, dtype=np.int32)
        weights = dict(template.weights)
        anchors = dict(template.anchors)
        name = f"bundled head ({len(vertices)} vertices, {len(faces)} faces)"
    except Exception as exc:  # the head is optional for this benchmark
        import trimesh

        mesh = trimesh.creation.uv_sphere(count=[50, 50])
        vertices = np.asarray(mesh.vertices * np.array([0.08, 0.11, 0.09]), dtype=np.float32)
        faces = np.asarray(mesh.faces, dtype=np.int32)
        weights, anchors = {}, {}
        name = (
            f"ellipsoid stand-in ({len(vertices)} vertices, {len(faces)} faces); "
            f"bundled head unavailable: {exc}"
        )
    if "jaw" in weights:
        jaw = np.asarray(weights["jaw"], dtype=np.float32)
    else:  # everything below the mouth line, fading in
        y = vertices[:, 1]
        mouth = y.min() + 0.35 * (y.max() - y.min())
        jaw = np.clip((mouth - y) / (0.2 * (y.max() - y.min())), 0.0, 1.0).astype(np.float32)
    hinge = np.asarray(
        anchors.get("jaw_hinge", [0.0, float(np.percentile(vertices[:, 1], 60)), float(vertices[:, 2].min())]),
        dtype=np.float32,
    )
    return vertices, faces, jaw, hinge, name


def jaw_motion(vertices: np.ndarray, jaw: np.ndarray, hinge: np.ndarray, n_frames: int, fps: float) -> np.ndarray:
    """(T, V, 3): the jaw opening by up to ~12° about the hinge's x axis at a syllable rate."""
    t = np.arange(n_frames) / fps
    angles = np.radians(6.0) * (1.0 - np.cos(2 * np.pi * 3.0 * t))  # 0 … 12°, 3 Hz
    rel = vertices - hinge
    frames = np.empty((n_frames, *vertices.shape), dtype=np.float32)
    for i, angle in enumerate(angles):
        a = angle * jaw  # per-vertex angle, opening the mouth (chin goes down and back)
        c, s = np.cos(a), np.sin(a)
        frames[i, :, 0] = vertices[:, 0]
        frames[i, :, 1] = hinge[1] + c * rel[:, 1] - s * rel[:, 2]
        frames[i, :, 2] = hinge[2] + s * rel[:, 1] + c * rel[:, 2]
    return frames


def render_only_fps(frames: np.ndarray, faces: np.ndarray, size: int, kind: str) -> float:
    renderer = make_renderer(faces, size, frame_camera(frames[0]), kind, n_vertices=frames.shape[1])
    try:
        renderer.render(frames[0])  # warm-up: shader compilation, first allocations
        start = time.perf_counter()
        for frame in frames:
            renderer.render(frame)
        return len(frames) / (time.perf_counter() - start)
    finally:
        renderer.close()


def _cpu_seconds() -> float:
    """CPU time of this process (all threads, llvmpipe's included) plus finished children (ffmpeg)."""
    try:
        import resource

        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return time.process_time() + children.ru_utime + children.ru_stime
    except ImportError:  # pragma: no cover - Windows
        return time.process_time()


def end_to_end_fps(
    frames: np.ndarray, faces: np.ndarray, size: int, kind: str, fps: float, workdir: Path, *, whole_head: bool = False
) -> tuple[float, float]:
    """Frames per second of ``render_video`` and its CPU milliseconds per frame (render + encode)."""
    wav = workdir / "speech.wav"
    if not wav.exists():
        seconds = len(frames) / fps
        t = np.arange(int(seconds * 16000)) / 16000
        sf.write(wav, (0.2 * np.sin(2 * np.pi * 180 * t) * (1 + np.sin(2 * np.pi * 3 * t))).astype(np.float32), 16000)
    out = workdir / f"{kind}-{size}.mp4"
    cpu = _cpu_seconds()
    start = time.perf_counter()
    template = None
    if whole_head:
        from kmtalk_cli.face.template import bundled_template

        template = bundled_template()
    result = render_video(
        frames, faces, out, audio_wav=wav, options=RenderOptions(size=size, fps=fps, renderer=kind),
        framing_vertices=frames[0], force=True, template=template,
    )  # fmt: skip
    elapsed = time.perf_counter() - start
    cpu = _cpu_seconds() - cpu
    assert result.frames == len(frames) and result.audio
    return len(frames) / elapsed, cpu / len(frames) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--sizes", default="512,800", help="comma-separated panel sizes")
    parser.add_argument("--renderers", default="gl,software", help="comma-separated: gl, software")
    parser.add_argument("--fps", type=float, default=30.0)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    kinds = [k.strip() for k in args.renderers.split(",") if k.strip()]

    vertices, faces, jaw, hinge, name = load_mesh()
    frames = jaw_motion(vertices, jaw, hinge, args.frames, args.fps)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"mesh: {name}")
    print(f"frames: {args.frames} at {args.fps:g} fps; CPUs: {os.cpu_count()}; load average before: {load:.2f}")

    rows = []
    with tempfile.TemporaryDirectory(prefix="kmtalk-bench-") as tmp:
        for kind in kinds:
            for size in sizes:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    try:
                        render = render_only_fps(frames, faces, size, kind)
                        e2e, cpu_ms = end_to_end_fps(frames, faces, size, kind, args.fps, Path(tmp))
                        if "bundled" in name:
                            head_e2e, head_ms = end_to_end_fps(frames, faces, size, kind, args.fps, Path(tmp), whole_head=True)
                            rows.append((f"{kind} whole head", size, "", f"{head_e2e:.1f}", f"{head_ms:.1f}",
                                         f"≥ 60 fps {'met' if head_e2e >= 60 else 'NOT met'}" if size == 800 and kind == "gl" else ""))
                    except Exception as exc:  # e.g. no EGL: report, keep going
                        rows.append((kind, size, f"failed: {exc}", "", "", ""))
                        continue
                target_size, target = TARGETS.get(kind, (0, 0.0))
                note = ""
                if size == target_size:
                    note = f"≥ {target:g} fps {'met' if e2e >= target else 'NOT met'}"
                rows.append((kind, size, f"{render:.1f}", f"{e2e:.1f}", f"{cpu_ms:.1f}", note))

    headers = ("renderer", "size", "render-only fps", "end-to-end fps", "CPU ms/frame", "target (end to end)")
    try:
        from rich.console import Console
        from rich.table import Table

        table = Table(title="kmtalk render speed")
        for h in headers:
            table.add_column(h, justify="left" if h in ("renderer", "target (end to end)") else "right")
        for row in rows:
            table.add_row(row[0], f"{row[1]}²", *row[2:])
        Console(width=max(100, Console().width)).print(table)
    except ImportError:
        widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) for i, h in enumerate(headers)]
        print("  ".join(h.ljust(w) for h, w in zip(headers, widths)))
        for row in rows:
            print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"load average after: {load:.2f} (other processes on the machine slow every number down)")
    print("end to end = render + H.264/AAC mp4 with audio muxed; CPU ms/frame (end to end) counts this")
    print("process (with llvmpipe's threads) and ffmpeg: an idle machine manages about cores × 1000 / it fps.")


if __name__ == "__main__":
    main()

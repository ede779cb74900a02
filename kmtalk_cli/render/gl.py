"""The OpenGL renderer: one headless EGL context reused for every frame.

Creating a context and its buffers costs far more than drawing a 5k-vertex face, so everything
is allocated once and each frame only uploads the moved vertices and reads the pixels back.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import RenderError
from .camera import Camera
from .shading import DEFAULT_LIGHTING, Lighting, SmoothNormals, albedo_array

_VERTEX_SHADER = """
#version 330
uniform mat4 u_mvp;
uniform mat3 u_normal_matrix;
in vec3 in_pos;
in vec3 in_normal;
in vec3 in_albedo;
out vec3 v_normal;
out vec3 v_albedo;
void main() {
    gl_Position = u_mvp * vec4(in_pos, 1.0);
    v_normal = u_normal_matrix * in_normal;
    v_albedo = in_albedo;
}
"""

#: Averages each 2×2 block of the supersampled image: one bilinear tap at the block's centre.
_RESOLVE_VERTEX = """
#version 330
out vec2 v_uv;
void main() {
    vec2 p = vec2(float((gl_VertexID << 1) & 2), float(gl_VertexID & 2));
    v_uv = p;
    gl_Position = vec4(p * 2.0 - 1.0, 0.0, 1.0);
}
"""
_RESOLVE_FRAGMENT = """
#version 330
uniform sampler2D u_image;
in vec2 v_uv;
out vec4 f_colour;
void main() {
    f_colour = texture(u_image, v_uv);
}
"""


def _vec3(v: tuple[float, float, float] | np.ndarray) -> str:
    return "vec3({:.8f}, {:.8f}, {:.8f})".format(*(float(x) for x in v))


def fragment_shader(lighting: Lighting) -> str:
    """GLSL for :func:`kmtalk_cli.render.shading.shade`, with every light baked in as a constant.

    On llvmpipe the fragment shader runs on the CPU for every covered pixel, so unrolled
    constants (no uniform loop, no dead lights) are measurably faster than a generic shader.
    """
    lines = [
        "#version 330",
        "in vec3 v_normal;",
        "in vec3 v_albedo;",
        "out vec4 f_colour;",
        "void main() {",
        "    vec3 n = normalize(v_normal);",
        "    if (!gl_FrontFacing) n = -n;  // two-sided: open meshes show their inside, lit",
        f"    float diffuse = {float(lighting.ambient):.8f};",
        "    float spec = 0.0;",
    ]
    for light in lighting.lights:
        d = np.asarray(light.direction, dtype=np.float64)
        h = d + np.array([0.0, 0.0, 1.0])
        h /= np.linalg.norm(h)
        intensity = float(light.intensity)
        lines.append(f"    diffuse += {intensity:.8f} * max(dot(n, {_vec3(d)}), 0.0);")
        if lighting.specular > 0.0:
            lines.append(
                f"    spec += {intensity:.8f} * pow(max(dot(n, {_vec3(h)}), 0.0), {float(lighting.shininess):.8f});"
            )
    lines += [
        f"    f_colour = vec4(v_albedo * diffuse + {float(lighting.specular):.8f} * spec, 1.0);",
        "}",
    ]
    return "\n".join(lines) + "\n"


def create_context() -> Any:
    """A standalone headless (EGL) OpenGL 3.3 context, or :class:`RenderError` saying why not.

    Kept as its own function so callers (and tests) have one place where GL can be unavailable.
    """
    try:
        import moderngl
    except ImportError as exc:  # pragma: no cover - moderngl is a dependency
        raise RenderError(f"OpenGL rendering needs moderngl, which failed to import ({exc}).") from None
    try:
        return moderngl.create_standalone_context(backend="egl", require=330)
    except Exception as exc:  # moderngl/glcontext raise plain Exception, OSError, ...
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RenderError(f"No headless OpenGL (EGL) context could be created: {reason}.") from None


class GLRenderer:
    """Draws one mesh topology from a fixed camera into an offscreen framebuffer.

    ``colours`` (V, 3) uint8 gives each vertex its albedo (default: the lighting's clay);
    ``supersample`` > 1 draws at that many times the size and filters it down with one bilinear
    tap per output pixel (at 2 exactly the mean of each 2×2 block; at the default 1.5 a small
    tent filter), which smooths silhouettes at a lower cost on llvmpipe than multisampling.
    """

    kind = "gl"

    def __init__(
        self,
        faces: np.ndarray,
        n_vertices: int,
        size: int,
        camera: Camera,
        *,
        lighting: Lighting = DEFAULT_LIGHTING,
        samples: int = 0,
        colours: np.ndarray | None = None,
        supersample: float = 1.0,
    ) -> None:
        self.size = int(size)
        self.lighting = lighting
        self.supersample = float(min(max(supersample, 1.0), 2.0))
        self._normals = SmoothNormals(faces, n_vertices)
        self._interleaved = np.zeros((n_vertices, 6), dtype=np.float32)
        self._albedo = albedo_array(colours, n_vertices, lighting)
        self._raw = np.empty((self.size, self.size, 3), dtype=np.uint8)
        self._background = lighting.background_u8
        self._ctx: Any = None
        ctx = create_context()
        self._ctx = ctx
        try:
            self._setup(faces, camera, samples)
        except RenderError:
            self.close()
            raise
        except Exception as exc:
            self.close()
            raise RenderError(f"OpenGL setup failed: {exc}.") from None

    def _setup(self, faces: np.ndarray, camera: Camera, samples: int) -> None:
        ctx = self._ctx
        prog = ctx.program(vertex_shader=_VERTEX_SHADER, fragment_shader=fragment_shader(self.lighting))
        prog["u_mvp"].write(camera.view_projection.T.astype(np.float32).tobytes())
        prog["u_normal_matrix"].write(camera.view[:3, :3].T.astype(np.float32).tobytes())
        self._prog = prog

        self._vbo = ctx.buffer(reserve=self._interleaved.nbytes, dynamic=True)
        self._cbo = ctx.buffer(self._albedo.tobytes())
        self._ibo = ctx.buffer(np.ascontiguousarray(faces, dtype=np.int32).tobytes())
        self._vao = ctx.vertex_array(
            prog,
            [(self._vbo, "3f 3f", "in_pos", "in_normal"), (self._cbo, "3f", "in_albedo")],
            index_buffer=self._ibo,
            index_element_size=4,
        )
        inner = int(round(self.size * self.supersample))
        size = (inner, inner)
        samples = int(min(max(samples, 0), ctx.max_samples))
        # With samples > 0, draw multisampled (smoother silhouettes) and resolve into a plain target
        # to read. Off by default: on llvmpipe 4× MSAA makes every frame about 2.5× slower.
        self._draw_fbo = ctx.framebuffer(
            color_attachments=[ctx.renderbuffer(size, components=4, samples=samples)],
            depth_attachment=ctx.depth_renderbuffer(size, samples=samples),
        )
        if samples > 0:
            self._read_fbo = ctx.framebuffer(color_attachments=[ctx.renderbuffer(size, components=4)])
        else:
            self._read_fbo = self._draw_fbo
        self.samples = samples
        self._resolve = None
        if self.supersample > 1:
            import moderngl

            # Draw into a texture at k× the size, then filter it down in one pass.
            texture = ctx.texture(size, 4)
            texture.filter = (moderngl.LINEAR, moderngl.LINEAR)
            texture.repeat_x = texture.repeat_y = False
            self._draw_fbo = ctx.framebuffer(color_attachments=[texture], depth_attachment=ctx.depth_renderbuffer(size))
            self._read_fbo = ctx.framebuffer(color_attachments=[ctx.renderbuffer((self.size, self.size), components=4)])
            program = ctx.program(vertex_shader=_RESOLVE_VERTEX, fragment_shader=_RESOLVE_FRAGMENT)
            self._resolve = (program, ctx.vertex_array(program, []), texture)
        self._clear = tuple(float(c) / 255.0 for c in self._background) + (1.0,)

    def render(self, vertices: np.ndarray) -> np.ndarray:
        """Draw one frame of (V, 3) positions; return a fresh (H, W, 3) uint8 image, top row first."""
        if self._ctx is None:
            raise RenderError("The GL renderer was used after close().")
        vertices = np.asarray(vertices, dtype=np.float32)
        normals = self._normals(vertices)  # also checks the shape
        buf = self._interleaved
        buf[:, :3] = vertices
        buf[:, 3:] = normals
        try:
            import moderngl

            ctx = self._ctx
            self._vbo.write(buf)
            self._draw_fbo.use()
            ctx.enable(moderngl.DEPTH_TEST)
            ctx.disable(moderngl.CULL_FACE)
            self._draw_fbo.clear(*self._clear, depth=1.0)
            self._vao.render(moderngl.TRIANGLES)
            if self._resolve is not None:
                program, quad, texture = self._resolve
                self._read_fbo.use()
                ctx.disable(moderngl.DEPTH_TEST)
                texture.use(0)
                program["u_image"].value = 0
                quad.render(moderngl.TRIANGLES, vertices=3)
            elif self._read_fbo is not self._draw_fbo:
                ctx.copy_framebuffer(self._read_fbo, self._draw_fbo)
            raw = self._raw
            self._read_fbo.read_into(raw, components=3, alignment=1)
            error = ctx.error
        except Exception as exc:
            raise RenderError(f"OpenGL rendering failed: {exc}.") from None
        if error != "GL_NO_ERROR":
            raise RenderError(f"OpenGL rendering failed with {error}.")
        # GL's rows run bottom-up; the copy both flips and hands the caller memory of its own.
        return raw[::-1].copy()

    def close(self) -> None:
        """Release the context and everything allocated in it; safe to call twice."""
        ctx, self._ctx = self._ctx, None
        if ctx is not None:
            ctx.release()

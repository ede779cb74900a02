"""The whole head on screen: camera views, background, anti-aliasing, labels, no see-through mouth."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from kmtalk_cli.errors import RenderError
from kmtalk_cli.face.rig import INDEX, PARAMETERS, build_rig
from kmtalk_cli.render import RenderOptions, frame_camera
from kmtalk_cli.render.camera import CAMERA_PRESETS, camera_view
from kmtalk_cli.render.pipeline import render_stills
from kmtalk_cli.render.shading import parse_colour
from kmtalk_cli.render.text import draw_label, text_mask

SIZE = 160
GREEN = (0.0, 1.0, 0.0)



@pytest.fixture(scope="module")
def open_mouth(head):
    w = np.zeros((1, len(PARAMETERS)))
    w[0, INDEX["jawOpen"]] = 1.0
    return build_rig(head).pose(w)


def background_share(image: np.ndarray, colour: tuple[float, float, float]) -> float:
    return float(np.all(image == np.round(np.asarray(colour) * 255), axis=2).mean())


def test_camera_presets_frame_different_nonempty_views(head):
    images = {}
    for name in CAMERA_PRESETS:
        options = RenderOptions(size=SIZE, renderer="software", view=camera_view(name), background=GREEN)
        (images[name],) = render_stills(head.vertices[None], head, options=options)
        share = background_share(images[name], GREEN)
        assert 0.02 < share < 0.95, name  # something is drawn, and it fits
    names = list(images)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert np.abs(images[a].astype(int) - images[b].astype(int)).mean() > 10, (a, b)
    assert background_share(images["mouth"], GREEN) < 0.2  # a close-up fills the frame


def test_yaw_pitch_zoom_move_the_camera(head):
    base = frame_camera(head.vertices)
    turned = frame_camera(head.vertices, view=camera_view("front", yaw=30.0))
    closer = frame_camera(head.vertices, view=camera_view("front", zoom=2.0))
    nose = head.vertices[head.landmarks[30]][None]
    assert turned.to_pixels(nose, 100)[0][0, 0] < base.to_pixels(nose, 100)[0][0, 0] - 5  # seen from the left
    ear = head.vertices[head.landmarks[16]][None]
    assert abs(closer.to_pixels(ear, 100)[0][0, 0] - 50) > 1.6 * abs(base.to_pixels(ear, 100)[0][0, 0] - 50)
    with pytest.raises(RenderError):
        camera_view("top")
    with pytest.raises(RenderError):
        camera_view("front", pitch=120.0)


def _mouth_pixels(head, frame: np.ndarray, options: RenderOptions, framing: np.ndarray) -> tuple[int, int]:
    """The pixel at the middle of the opening between the lips (front view)."""
    up, low = head.region("lip_contour_upper"), head.region("lip_contour_lower")
    mid_up = up[np.argmin(np.abs(frame[up, 0]))]
    mid_low = low[np.argmin(np.abs(frame[low, 0]))]
    centre = 0.5 * (frame[mid_up] + frame[mid_low])
    camera = frame_camera(framing, view=options.view)
    pixels, _ = camera.to_pixels(centre[None], options.size)
    return int(pixels[0, 0]), int(pixels[0, 1])


def test_no_background_shows_through_an_open_mouth(head, open_mouth):
    options = RenderOptions(size=320, renderer="software", background=GREEN)
    (image,) = render_stills(open_mouth, head, options=options)
    from kmtalk_cli.face.accessories import assemble, rest_assembly

    x, y = _mouth_pixels(head, open_mouth[0], options, rest_assembly(assemble(head)))
    patch = image[y - 3: y + 4, x - 6: x + 7].astype(int)
    assert not np.any(np.all(patch == (0, 255, 0), axis=2))  # no green anywhere in the opening
    skin = image[int(0.45 * 320), 160].astype(int)  # between the eyes and the mouth
    assert patch.sum(axis=2).mean() < skin.sum()  # the mouth's inside is darker than the skin
    # Without the parts the same pixels are background: the check can fail.
    bare = dataclasses.replace(head, parts={})
    (see_through,) = render_stills(open_mouth, bare, options=options)
    x, y = _mouth_pixels(head, open_mouth[0], options, head.vertices)
    assert np.any(np.all(see_through[y - 3: y + 4, x - 6: x + 7] == (0, 255, 0), axis=2))


def test_background_colour_and_antialiasing(head):
    plain = RenderOptions(size=SIZE, renderer="software", background=parse_colour("#ffffff"), antialias=False)
    smooth = dataclasses.replace(plain, antialias=True)
    (a,) = render_stills(head.vertices[None], head, options=plain)
    (b,) = render_stills(head.vertices[None], head, options=smooth)
    assert tuple(a[0, 0]) == (255, 255, 255) == tuple(b[0, 0])
    # Supersampling blends silhouette pixels: many more distinct greys along the edges.
    assert len(np.unique(b.reshape(-1, 3), axis=0)) > 1.2 * len(np.unique(a.reshape(-1, 3), axis=0))
    with pytest.raises(RenderError):
        parse_colour("#12345")


def test_labels_are_drawn_in_the_panel_corner():
    image = np.full((200, 200, 3), 128, dtype=np.uint8)
    draw_label(image, "Ground truth")
    corner = image[:40, :120]
    assert (corner == 250).all(axis=2).sum() > 30  # white ink
    assert (corner < 128).all(axis=2).sum() > 100  # on a dark box
    assert (image[100:] == 128).all()  # the rest is untouched
    assert text_mask("AB").shape == (7, 11)

"""Short labels burnt into frames (panel names on side-by-side videos) with a built-in 5×7 font.

No font file or imaging library is needed: each glyph is seven rows of five bits, drawn by
NumPy at an integer scale on a dark translucent box so it reads on any background.
"""

from __future__ import annotations

import numpy as np

#: Rows of each glyph, top first; '#' is ink. Lower-case letters are drawn as capitals.
_GLYPHS: dict[str, tuple[str, ...]] = {
    "A": (" ### ", "#   #", "#   #", "#####", "#   #", "#   #", "#   #"),
    "B": ("#### ", "#   #", "#   #", "#### ", "#   #", "#   #", "#### "),
    "C": (" ### ", "#   #", "#    ", "#    ", "#    ", "#   #", " ### "),
    "D": ("#### ", "#   #", "#   #", "#   #", "#   #", "#   #", "#### "),
    "E": ("#####", "#    ", "#    ", "#### ", "#    ", "#    ", "#####"),
    "F": ("#####", "#    ", "#    ", "#### ", "#    ", "#    ", "#    "),
    "G": (" ### ", "#   #", "#    ", "# ###", "#   #", "#   #", " ####"),
    "H": ("#   #", "#   #", "#   #", "#####", "#   #", "#   #", "#   #"),
    "I": (" ### ", "  #  ", "  #  ", "  #  ", "  #  ", "  #  ", " ### "),
    "J": ("  ###", "   # ", "   # ", "   # ", "   # ", "#  # ", " ##  "),
    "K": ("#   #", "#  # ", "# #  ", "##   ", "# #  ", "#  # ", "#   #"),
    "L": ("#    ", "#    ", "#    ", "#    ", "#    ", "#    ", "#####"),
    "M": ("#   #", "## ##", "# # #", "# # #", "#   #", "#   #", "#   #"),
    "N": ("#   #", "##  #", "# # #", "#  ##", "#   #", "#   #", "#   #"),
    "O": (" ### ", "#   #", "#   #", "#   #", "#   #", "#   #", " ### "),
    "P": ("#### ", "#   #", "#   #", "#### ", "#    ", "#    ", "#    "),
    "Q": (" ### ", "#   #", "#   #", "#   #", "# # #", "#  # ", " ## #"),
    "R": ("#### ", "#   #", "#   #", "#### ", "# #  ", "#  # ", "#   #"),
    "S": (" ####", "#    ", "#    ", " ### ", "    #", "    #", "#### "),
    "T": ("#####", "  #  ", "  #  ", "  #  ", "  #  ", "  #  ", "  #  "),
    "U": ("#   #", "#   #", "#   #", "#   #", "#   #", "#   #", " ### "),
    "V": ("#   #", "#   #", "#   #", "#   #", "#   #", " # # ", "  #  "),
    "W": ("#   #", "#   #", "#   #", "# # #", "# # #", "# # #", " # # "),
    "X": ("#   #", "#   #", " # # ", "  #  ", " # # ", "#   #", "#   #"),
    "Y": ("#   #", "#   #", " # # ", "  #  ", "  #  ", "  #  ", "  #  "),
    "Z": ("#####", "    #", "   # ", "  #  ", " #   ", "#    ", "#####"),
    "0": (" ### ", "#   #", "#  ##", "# # #", "##  #", "#   #", " ### "),
    "1": ("  #  ", " ##  ", "  #  ", "  #  ", "  #  ", "  #  ", " ### "),
    "2": (" ### ", "#   #", "    #", "   # ", "  #  ", " #   ", "#####"),
    "3": ("#####", "   # ", "  #  ", "   # ", "    #", "#   #", " ### "),
    "4": ("   # ", "  ## ", " # # ", "#  # ", "#####", "   # ", "   # "),
    "5": ("#####", "#    ", "#### ", "    #", "    #", "#   #", " ### "),
    "6": ("  ## ", " #   ", "#    ", "#### ", "#   #", "#   #", " ### "),
    "7": ("#####", "    #", "   # ", "  #  ", " #   ", " #   ", " #   "),
    "8": (" ### ", "#   #", "#   #", " ### ", "#   #", "#   #", " ### "),
    "9": (" ### ", "#   #", "#   #", " ####", "    #", "   # ", " ##  "),
    " ": ("     ",) * 7,
    "-": ("     ", "     ", "     ", "#####", "     ", "     ", "     "),
    "_": ("     ", "     ", "     ", "     ", "     ", "     ", "#####"),
    ".": ("     ", "     ", "     ", "     ", "     ", " ##  ", " ##  "),
    ",": ("     ", "     ", "     ", "     ", " ##  ", "  #  ", " #   "),
    ":": ("     ", " ##  ", " ##  ", "     ", " ##  ", " ##  ", "     "),
    "/": ("    #", "    #", "   # ", "  #  ", " #   ", "#    ", "#    "),
    "(": ("   # ", "  #  ", " #   ", " #   ", " #   ", "  #  ", "   # "),
    ")": (" #   ", "  #  ", "   # ", "   # ", "   # ", "  #  ", " #   "),
    "+": ("     ", "  #  ", "  #  ", "#####", "  #  ", "  #  ", "     "),
    "=": ("     ", "     ", "#####", "     ", "#####", "     ", "     "),
    "?": (" ### ", "#   #", "    #", "   # ", "  #  ", "     ", "  #  "),
}
_MASKS = {ch: np.array([[c == "#" for c in row] for row in rows], dtype=bool) for ch, rows in _GLYPHS.items()}


def text_mask(text: str, scale: int = 1) -> np.ndarray:
    """Boolean ink mask (7·scale, 6·len·scale) of ``text``; unknown characters draw as '?'."""
    scale = max(1, int(scale))
    if not text:
        return np.zeros((7 * scale, 0), dtype=bool)
    cells = []
    for ch in text.upper():
        glyph = _MASKS.get(ch, _MASKS["?"])
        cells.append(np.pad(glyph, ((0, 0), (0, 1))))
    mask = np.concatenate(cells, axis=1)[:, :-1]
    return np.repeat(np.repeat(mask, scale, axis=0), scale, axis=1)


def draw_label(image: np.ndarray, text: str, *, x: int | None = None, y: int | None = None, scale: int | None = None) -> np.ndarray:
    """``image`` (H, W, 3) uint8 with ``text`` in white on a dark box (top left by default), in place.

    The scale follows the image height (2 at 512 px, 3 at 800 px); text longer than the image
    is cut at its right edge.
    """
    h, w = image.shape[:2]
    scale = max(1, round(h / 270)) if scale is None else int(scale)
    mask = text_mask(text, scale)
    pad = 2 * scale
    x = pad * 2 if x is None else int(x)
    y = pad * 2 if y is None else int(y)
    box_h, box_w = mask.shape[0] + 2 * pad, min(mask.shape[1] + 2 * pad, max(0, w - x))
    if box_w <= 0 or y + box_h > h:
        return image
    region = image[y : y + box_h, x : x + box_w]
    region[:] = (region.astype(np.uint16) * 2 // 5 + 12).astype(np.uint8)  # darken: 40 % + a little
    ink = mask[:, : max(0, box_w - 2 * pad)]
    region[pad : pad + ink.shape[0], pad : pad + ink.shape[1]][ink] = (250, 250, 250)
    return image

"""Draw a clinician's region annotations onto the image they were made on, for the report.

Why: the PDF listed the annotations in a table but never showed where they were; a reader of the handed-over report
must see the box or outline the clinician drew. Pure: image bytes and geometries in (the input's pixel coordinates,
x right, y down, as :mod:`vitalens.service.ops.annotations` validates them), PNG bytes out.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Region", "draw_regions"]

logger = logging.getLogger(__name__)

#: Outline colours in drawing order (the same order as the numbers printed beside each region).
_COLOURS = ((0, 200, 255), (255, 200, 0), (255, 80, 200), (120, 255, 120), (255, 255, 255))


@dataclass(frozen=True)
class Region:
    """One annotation to draw: ``shape`` ``box`` (``x0 y0 x1 y1``) or ``polygon`` (``points``); ``number`` is
    printed beside it and matches the annotations table."""

    shape: str
    geometry: dict[str, Any]
    label: str
    number: int


def draw_regions(image: bytes, regions: Sequence[Region]) -> bytes:
    """The image (RGB PNG) with each box or polygon outlined and numbered; other shapes are skipped.

    Raises:
        OSError / PIL.UnidentifiedImageError: ``image`` is not a readable image.
    """
    from PIL import Image, ImageDraw

    img = Image.open(io.BytesIO(image)).convert("RGB")
    draw = ImageDraw.Draw(img)
    width = max(2, round(max(img.size) / 250))
    for r in regions:
        colour = _COLOURS[(r.number - 1) % len(_COLOURS)]
        g = r.geometry
        if r.shape == "box" and all(k in g for k in ("x0", "y0", "x1", "y1")):
            x0, y0, x1, y1 = (float(g[k]) for k in ("x0", "y0", "x1", "y1"))
            draw.rectangle([x0, y0, x1, y1], outline=colour, width=width)
            anchor = (x0, max(0.0, y0 - 4 * width))
        elif r.shape == "polygon" and len(g.get("points") or []) >= 3:
            pts = [(float(x), float(y)) for x, y in g["points"]]
            draw.line([*pts, pts[0]], fill=colour, width=width, joint="curve")
            anchor = min(pts, key=lambda p: (p[1], p[0]))
        else:
            continue
        draw.text((anchor[0] + width, anchor[1]), str(r.number), fill=colour)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()

"""Images the emulators serve as a platform's review evidence (a rejection's screenshots):
small real PNGs that say what they stand for, drawn with Pillow as the trial QR codes are.
"""

from __future__ import annotations

import io
import textwrap

from PIL import Image, ImageDraw, ImageFont

__all__ = ["evidence_png"]


WIDTH, MARGIN, LINE_HEIGHT, COLUMNS = 480, 12, 16, 70


def evidence_png(heading: str, text: str) -> bytes:
    """A white PNG with a red frame, ``heading`` and then ``text`` wrapped below it.

    Drawn with Pillow's default font, which has Latin letters only: other characters show
    as ``?`` (the emulators' review reasons are English).
    """
    lines = [heading, ""]
    for paragraph in text.splitlines() or [""]:
        lines += textwrap.wrap(paragraph, COLUMNS) or [""]
    lines = [line.encode("ascii", "replace").decode("ascii") for line in lines]
    height = 2 * MARGIN + LINE_HEIGHT * len(lines)
    image = Image.new("RGB", (WIDTH, height), "white")
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, WIDTH - 1, height - 1), outline=(200, 30, 30), width=3)
    font = ImageFont.load_default()
    for n, line in enumerate(lines):
        draw.text((MARGIN, MARGIN + n * LINE_HEIGHT), line, fill=(0, 0, 0), font=font)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()

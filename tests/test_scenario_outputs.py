"""The scenario runner's frame outputs (host_tools/scenario.py) against the plain one-pixel-at-a-
time way of computing them: OCR of the screen text, the packed copy kept for the contact sheet,
the PNG image. The runner computes them from one bytes copy of the frame; these are the
definitions it must keep."""
import io
import random

from host_tools import scenario
from host_tools.sim import framebuf_mod

ON = bytes((120, 200, 255))
OFF = bytes((8, 10, 24))


def _ocr_reference(pixels):
    # each 8x8 cell as 8 column bytes (bit y = row y) looked up in the font (and its inverse)
    f = framebuf_mod.font()
    g = {}
    for i in range(96):
        cols = tuple(f[i * 8:(i + 1) * 8])
        g.setdefault(cols, chr(32 + i))
        g.setdefault(tuple(255 - c for c in cols), chr(32 + i))
    rows = []
    for r in range(len(pixels) // 8):
        line = []
        for c in range(len(pixels[0]) // 8):
            cols = []
            for x in range(c * 8, c * 8 + 8):
                cols.append(sum(1 << y for y in range(8) if pixels[r * 8 + y][x]))
            line.append(g.get(tuple(cols), "~"))
        rows.append("".join(line).rstrip())
    while rows and rows[-1] == "":
        rows.pop()
    return rows


def _frame(rnd, w=128, h=64):
    buf = bytearray(w * h // 8)
    fb = framebuf_mod.FrameBuffer(buf, w, h, framebuf_mod.MONO_VLSB)
    fb.fill(0)
    for _ in range(rnd.randrange(1, 9)):
        row = rnd.randrange(h // 8)
        text = "".join(chr(rnd.randrange(32, 128)) for _ in range(rnd.randrange(1, 17)))
        x = 8 * rnd.randrange(w // 8) if rnd.random() < 0.8 else rnd.randrange(-8, w)
        if rnd.random() < 0.3:  # a highlighted row
            fb.fill_rect(0, row * 8, w, 8, 1)
            fb.text(text, x, row * 8, 0)
        else:
            fb.text(text, x, row * 8 if rnd.random() < 0.8 else rnd.randrange(h), 1)
    if rnd.random() < 0.5:
        fb.rect(rnd.randrange(w), rnd.randrange(h), rnd.randrange(1, 40), rnd.randrange(1, 20), 1)
    return [[(buf[(y >> 3) * w + x] >> (y & 7)) & 1 for x in range(w)] for y in range(h)]


def test_ocr_reads_as_the_cell_by_cell_reference():
    rnd = random.Random(3)
    seen = set()
    for _ in range(150):
        px = _frame(rnd)
        want = _ocr_reference(px)
        assert scenario.ocr(px) == want
        assert scenario._ocr_pixel_by_pixel(px) == want
        sink = scenario.FrameSink(None)
        sink.add(0, px)
        assert sink.ocr(px) == want  # the runner's path: the packed copy of the frame just added
        other = _frame(rnd)
        assert sink.ocr(other) == _ocr_reference(other)  # any other frame: read itself
        seen.update("".join(want))
    assert len(seen) > 80  # most glyphs, '~' cells and blanks were read
    # other shapes and pixel types: bools, any truthy value, a width not a multiple of 8
    px = _frame(rnd)
    assert scenario.ocr([[bool(v) for v in row] for row in px]) == _ocr_reference(px)
    assert scenario.ocr([[v * 7 for v in row] for row in px]) == _ocr_reference(px)
    px = _frame(rnd, w=64, h=32)
    assert scenario.ocr(px) == _ocr_reference(px)
    px = [row[:-3] for row in _frame(rnd)]
    assert scenario.ocr(px) == _ocr_reference(px)
    assert scenario.ocr([[0] * 8] * 8) == []


def test_packed_copy_and_back():
    rnd = random.Random(4)
    for _ in range(20):
        px = _frame(rnd)
        data = scenario._pack(px)
        want = bytes(sum(1 << i for i in range(8) if row[x0 + i])
                     for row in px for x0 in range(0, 128, 8))
        assert data == want
        assert scenario._unpack(data) == px


def test_frame_image_is_the_rgb_of_every_pixel_scaled():
    from PIL import Image

    rnd = random.Random(5)
    for scale in (4, 2):
        px = _frame(rnd)
        want = Image.frombytes("RGB", (128, 64), b"".join(ON if v else OFF
                                                          for row in px for v in row))
        want = want.resize((128 * scale, 64 * scale), Image.NEAREST)
        got = scenario.frame_image(px, scale)
        assert got.mode == "RGB" and got.size == want.size
        assert got.tobytes() == want.tobytes()
        a, b = io.BytesIO(), io.BytesIO()
        got.save(a, format="PNG")
        want.save(b, format="PNG")
        assert a.getvalue() == b.getvalue()  # the PNG files are the same bytes


def test_frame_png_decodes_to_the_rgb_of_every_pixel_scaled():
    """The runner's PNG file (a 1-bit palette image, made without PIL) shows exactly the
    pixels of the RGB image of every pixel scaled: on random frames, an all-dark and an all-lit
    one, and frames with one lit pixel at the left and right edges (the nibble order)."""
    from PIL import Image

    rnd = random.Random(9)
    frames = [_frame(rnd) for _ in range(6)]
    frames.append([[0] * 128 for _ in range(64)])
    frames.append([[1] * 128 for _ in range(64)])
    for x in (0, 1, 126, 127):
        px = [[0] * 128 for _ in range(64)]
        px[5][x] = 1
        frames.append(px)
    for px in frames:
        flat = bytes(v for row in px for v in row)
        data = scenario.frame_png(flat, 128, 64, 4)
        got = Image.open(io.BytesIO(data))
        assert got.size == (512, 256) and got.mode == "P"
        want = Image.frombytes("RGB", (128, 64), b"".join(ON if v else OFF
                                                          for row in px for v in row))
        want = want.resize((512, 256), Image.NEAREST)
        assert got.convert("RGB").tobytes() == want.tobytes()

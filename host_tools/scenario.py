"""Scenario runner: the whole firmware from power-on in the simulation.

    python -m host_tools.scenario FILE.json --out DIR

Writes DIR/trace.json (events, per-channel DAC amplitude and enable record, pulse summary, OLED
text at every screen change), DIR/pins.vcd (every GPIO edge of interest), DIR/oled/NNNN_<ms>.png
(one PNG per screen change), DIR/contact_sheet.png and DIR/flash/ (the simulated flash at the end).
The file format is described in host_tools/scenario_core.py and docs/usage.md.
"""
import argparse
import io
import json
import os
import shutil
import sys

from host_tools import scenario_core
from host_tools.vcd import VcdWriter, write_vcd

# -- OCR of the visible frame (the text really on the panel, not what the app believes) ---------

_GLYPHS = None


def _glyphs():
    """{8 bytes: character}: a glyph cell as 8 pixel rows top to bottom, one byte each with the
    leftmost pixel in bit 0 (the packed frame's layout), normal and highlighted (inverted)."""
    global _GLYPHS
    if _GLYPHS is None:
        from host_tools.sim import framebuf_mod

        f = framebuf_mod.font()
        g = {}
        for i in range(96):
            cols = f[i * 8:(i + 1) * 8]  # the font's layout: a byte per column, top in bit 0
            rows = bytes(sum(((cols[x] >> y) & 1) << x for x in range(8)) for y in range(8))
            g.setdefault(rows, chr(32 + i))
            inv = bytes(255 - r for r in rows)
            g.setdefault(inv, chr(32 + i))  # highlighted (inverted) rows read the same
        _GLYPHS = g
    return _GLYPHS


# byte tables: 0 -> 0, anything else -> 1; and 1 -> 1 << k (k = 0..7)
_NONZERO = bytes([0] + [1] * 255)
_BIT = [bytes([0, 1 << k]) + bytes(254) for k in range(8)]


def _flat(pixels):
    """The frame as one bytes object, one byte (0/1) per pixel row by row; None if the rows
    are not all of one length."""
    h = len(pixels)
    w = len(pixels[0]) if h else 0
    try:
        data = b"".join(map(bytes, pixels))
    except (TypeError, ValueError):  # not small ints (bools, None, big values...)
        data = bytes(1 if v else 0 for row in pixels for v in row)
    if len(data) != w * h:
        return None
    return data.translate(_NONZERO)


def _pack_flat(flat):
    """8 pixels a byte, the leftmost in bit 0, row by row (the width a multiple of 8)."""
    acc = 0
    for i in range(8):  # pixel i of every group of 8 into bit i
        acc |= int.from_bytes(flat[i::8].translate(_BIT[i]), "little")
    return acc.to_bytes(len(flat) // 8, "little")


def ocr(pixels):
    """Text rows of a 128x64 frame read on the 8x8 character grid the UI draws on. Cells that
    are not a glyph (bars, icons) read as '~'; trailing blanks are stripped."""
    h = len(pixels)
    w = len(pixels[0]) if h else 0
    flat = _flat(pixels) if w % 8 == 0 else None
    if flat is None:
        return _ocr_pixel_by_pixel(pixels)
    return _ocr_packed(_pack_flat(flat), w, h)


def _ocr_packed(packed, w, h):
    g = _glyphs()
    n = w // 8  # bytes per row, and cells per text row
    rows = []
    for r in range(h // 8):
        base = r * 8 * n
        # cell c: byte c of the band's 8 rows
        rows.append("".join([g.get(packed[base + c:base + 8 * n:n], "~")
                             for c in range(n)]).rstrip())
    while rows and rows[-1] == "":
        rows.pop()
    return rows


def _ocr_pixel_by_pixel(pixels):
    """ocr() one pixel at a time (rows of unequal length or a width not a multiple of 8; the
    reference of the tests)."""
    g = _glyphs()
    rows = []
    h = len(pixels)
    w = len(pixels[0]) if h else 0
    for r in range(h // 8):
        line = []
        for c in range(w // 8):
            cell = []
            for y in range(8):
                b = 0
                for i in range(8):
                    if pixels[r * 8 + y][c * 8 + i]:
                        b |= 1 << i
                cell.append(b)
            line.append(g.get(bytes(cell), "~"))
        rows.append("".join(line).rstrip())
    while rows and rows[-1] == "":
        rows.pop()
    return rows


# -- images -----------------------------------------------------------------------------------

_ON = bytes((120, 200, 255))
_OFF = bytes((8, 10, 24))


def frame_image(pixels, scale=4):
    """The frame as an RGB image, each pixel a scale x scale square (lit: _ON, dark: _OFF)."""
    h = len(pixels)
    w = len(pixels[0])
    flat = _flat(pixels)
    if flat is None:
        flat = bytes(1 if v else 0 for row in pixels for v in row[:w])
    return _image(flat, w, h, scale)


def _image(flat, w, h, scale):
    from PIL import Image

    # a two-colour palette image made RGB, then scaled: the same pixels as the RGB image of
    # every pixel's colour, scaled
    img = Image.frombytes("P", (w, h), flat)
    img.putpalette(_OFF + _ON)
    return img.convert("RGB").resize((w * scale, h * scale), Image.NEAREST)


# (pixel pair) -> the byte of their two 4-pixel-wide squares in a 1-bit row, leftmost in the high
# nibble: the pair is 2 * left + right
_PAIR_BYTE = bytes((0x00, 0x0F, 0xF0, 0xFF)) + bytes(252)
_TWICE = bytes((0, 2)) + bytes(254)


def frame_png(flat, w, h, scale=4):
    """The PNG file of a frame (flat: one byte 0/1 per pixel, row by row) as a two-colour
    palette image at 1 bit a pixel, each pixel a scale x scale square: decoded, the same RGB
    pixels as _image(flat, w, h, scale) (tests/test_scenario_outputs.py), in a file a tenth the
    size, made about 30 times faster than PIL's RGB PNG (whose zlib work was 2 ms a frame, the
    largest cost of a streaming scenario run). Scale 4 and an even width only; else PIL."""
    import struct
    import zlib

    if scale != 4 or w % 2:
        buf = io.BytesIO()
        _image(flat, w, h, scale).save(buf, format="PNG")
        return buf.getvalue()
    pairs = bytes(map(int.__or__, flat[0::2].translate(_TWICE), flat[1::2]))
    row_bytes = pairs.translate(_PAIR_BYTE)
    n = w // 2
    lines = []
    for r in range(h):
        line = b"\x00" + row_bytes[r * n:(r + 1) * n]
        lines.append(line * scale)
    data = zlib.compress(b"".join(lines), 6)

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(
            ">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w * scale, h * scale, 1, 3, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"PLTE", _OFF + _ON) +
            chunk(b"IDAT", data) + chunk(b"IEND", b""))


def contact_sheet(frames, path, cols=6, scale=2, max_frames=60):
    from PIL import Image, ImageDraw

    if not frames:
        return
    if len(frames) > max_frames:
        step = len(frames) / max_frames
        frames = [frames[int(i * step)] for i in range(max_frames)]
    fw, fh = 128 * scale, 64 * scale
    pad = 18
    rows = (len(frames) + cols - 1) // cols
    sheet = Image.new("RGB", (cols * (fw + 8) + 8, rows * (fh + pad + 8) + 8), (40, 40, 40))
    d = ImageDraw.Draw(sheet)
    for i, (t_ms, px) in enumerate(frames):
        x = 8 + (i % cols) * (fw + 8)
        y = 8 + (i // cols) * (fh + pad + 8)
        sheet.paste(frame_image(px, scale), (x, y + pad))
        d.text((x, y + 2), "%d:%02d.%03d" % (t_ms // 60000, t_ms // 1000 % 60, t_ms % 1000),
               fill=(230, 230, 230))
    sheet.save(path)


# -- run --------------------------------------------------------------------------------------

def run_file(path, out_dir, png=True, board=None, progress=None, skip=True):
    with open(path) as f:
        try:
            spec = json.load(f)
        except ValueError as e:
            raise scenario_core.ScenarioError("%s is not valid JSON: %s" % (path, e)) from None
    if board is not None and isinstance(spec, dict):
        spec["board"] = board
    return run_spec(spec, out_dir, png, progress, skip)


def run_spec(spec, out_dir=None, png=True, progress=None, skip=True):
    """Run a scenario. With out_dir the records stream to disk as the run goes (pins.vcd, one
    PNG per frame) and memory stays bounded whatever the duration; without, the whole record is
    kept in memory (run.trace: merged_edges and the frames, for tests). skip=False runs every
    loop tick (the same run, slower: tests/test_sim_skip.py)."""
    from host_tools.sim import flash as flash_mod

    scenario_core.validate(spec)
    if out_dir is None:
        run = scenario_core.Run(spec, ocr=ocr, flash_factory=flash_mod.SimFlash,
                                progress=progress, skip=skip)
        trace = run.run()
        return run, scenario_core.trace_dict(trace)
    os.makedirs(out_dir, exist_ok=True)
    frames = FrameSink(os.path.join(out_dir, "oled") if png else None)
    vcd_path = os.path.join(out_dir, "pins.vcd")

    def recorder(board):
        names = [name for name, _pin in scenario_core.wires(board)]
        return scenario_core.Recorder(board, vcd=VcdWriter(vcd_path, names))

    run = scenario_core.Run(spec, ocr=frames.ocr, flash_factory=flash_mod.SimFlash,
                            recorder=recorder, on_frame=frames.add, progress=progress,
                            skip=skip)
    trace = run.run()
    run.recorder.finish()
    result = scenario_core.trace_dict(trace)
    write_outputs(run, result, out_dir, frames)
    return run, result


class FrameSink:
    """OLED frames as they come: one PNG each (when `folder`), and 1 KB packed copies for the
    contact sheet (the pixels themselves are not kept)."""

    def __init__(self, folder):
        self.folder = folder
        self.packed = []  # (t_ms, bytes: 64 rows x 16 bytes)
        self._last = None  # (pixels, packed) of the frame added last
        if folder is not None:
            # PIL is imported now, from the host: during the run `os` is the flash's stand-in
            from PIL import Image, ImageDraw  # noqa: F401

            if os.path.isdir(folder):
                shutil.rmtree(folder)
            os.makedirs(folder)

    def add(self, t_ms, px):
        i = len(self.packed)
        flat = _flat(px)
        w = len(px[0])
        self._last = None
        if flat is None:
            flat = bytes(1 if v else 0 for row in px for v in row)
        packed = _pack_flat(flat)
        self.packed.append((t_ms, packed))
        if len(flat) == w * len(px) and w % 8 == 0:
            self._last = (px, packed)
        if self.folder is not None:
            # io.open: during the run the builtin open() is the simulated flash's
            data = frame_png(flat, w, len(px), 4)
            with io.open(os.path.join(self.folder, "%04d_%08dms.png" % (i, t_ms)), "wb") as f:
                f.write(data)

    def ocr(self, px):
        """ocr(px), reading the packed copy when px is the frame just added (the runner reads
        each new frame right after handing it over)."""
        last = self._last
        if last is not None and last[0] is px:
            return _ocr_packed(last[1], len(px[0]), len(px))
        return ocr(px)

    def frames(self, idx):
        return [(self.packed[i][0], _unpack(self.packed[i][1])) for i in idx]


def _pack(px):
    """64 rows x 16 bytes: 8 pixels a byte, the leftmost in bit 0."""
    flat = _flat(px)
    if flat is None:
        flat = bytes(1 if v else 0 for row in px for v in row)
    return _pack_flat(flat)


# byte -> its bit k as 0/1 (k = 0..7)
_BIT_OF = [bytes((v >> k) & 1 for v in range(256)) for k in range(8)]


def _unpack(data, w=128):
    flat = bytearray(len(data) * 8)
    for i in range(8):
        flat[i::8] = data.translate(_BIT_OF[i])
    return [list(flat[r * w:(r + 1) * w]) for r in range(len(flat) // w)]


def _sheet_index(n, max_frames=60):
    if n <= max_frames:
        return list(range(n))
    step = n / max_frames
    return [int(i * step) for i in range(max_frames)]


def write_outputs(run, result, out_dir, frames=None):
    with open(os.path.join(out_dir, "trace.json"), "w") as f:
        json.dump(result, f, indent=1)
    fdir = os.path.join(out_dir, "flash")
    if os.path.isdir(fdir):
        shutil.rmtree(fdir)
    run.flash.dump_to(fdir)
    if frames is not None and frames.folder is not None:
        sheet = frames.frames(_sheet_index(len(frames.packed)))
        contact_sheet(sheet, os.path.join(out_dir, "contact_sheet.png"))


def write_vcd_from_trace(trace, path, end_cycle):
    """pins.vcd of a run that kept its whole record (no Recorder): the same file the streaming
    run writes."""
    wires = [(name, scenario_core.merged_edges(trace, pin))
             for name, pin in scenario_core.wires(trace.board)]
    write_vcd(path, wires, trace.boots[0][2].sys_hz, end_cycle=end_cycle)


class Progress:
    """Progress on stderr: device time, share done and speed, at most twice a wall second,
    and only once the run has taken more than a second."""

    def __init__(self, stream=None, label="scenario"):
        import time

        self.stream = stream or sys.stderr
        self.label = label
        # on a terminal one line rewritten in place; in a log file a line every 10 s
        self.tty = getattr(self.stream, "isatty", lambda: False)()
        self.every = 0.5 if self.tty else 10.0
        self.t0 = time.monotonic()
        self.last = self.t0
        self.shown = False
        self._time = time

    def __call__(self, t_ms, duration_ms):
        now = self._time.monotonic()
        if now - self.t0 < 1.0 or now - self.last < self.every:
            return
        self.last = now
        wall = now - self.t0
        self.stream.write("%s%s: %7.1f / %.1f s device time (%3d%%), %.1fx real time%s" % (
            "\r" if self.tty else "", self.label, t_ms / 1000, duration_ms / 1000,
            100 * t_ms // max(1, duration_ms), t_ms / 1000 / wall, "  " if self.tty else "\n"))
        self.stream.flush()
        self.shown = True

    def done(self):
        if self.shown and self.tty:
            self.stream.write("\n")
            self.stream.flush()


def peak_rss_mb():
    """Peak resident memory of this process so far (Linux: ru_maxrss in KB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("scenario", help="scenario JSON file")
    ap.add_argument("--out", required=True, help="output folder")
    ap.add_argument("--no-png", action="store_true", help="skip OLED PNGs (faster)")
    ap.add_argument("--every-tick", action="store_true",
                    help="run every loop tick of the firmware (by default the ticks that would "
                         "only repeat the last one are left out: the same run, faster)")
    ap.add_argument("--board", choices=["pico", "esp32"], default=None,
                    help="run on this board whatever the file says")
    a = ap.parse_args(argv)
    import time

    t0 = time.perf_counter()
    prog = Progress()
    try:
        run, result = run_file(a.scenario, a.out, png=not a.no_png, board=a.board,
                               progress=prog, skip=not a.every_tick)
    except scenario_core.ScenarioError as e:
        print("scenario: %s" % e, file=sys.stderr)
        return 2
    except OSError as e:
        print("scenario: cannot read %s: %s" % (a.scenario, e), file=sys.stderr)
        return 2
    finally:
        prog.done()
    wall = time.perf_counter() - t0
    n_faults = sum(1 for e in result["events"] if e["kind"] == "fault")
    print(json.dumps({"out": a.out, "device_s": run.duration_ms / 1000, "wall_s": round(wall, 3),
                      "x_realtime": round(run.duration_ms / 1000 / wall, 1),
                      "peak_rss_mb": round(peak_rss_mb(), 1), "events": len(result["events"]),
                      "screens": len(result["screens"]), "faults": n_faults,
                      "ticks_left_out": run.ticks_left_out,
                      "pulses": {k: v["pulses"]["pulse_count"]
                                 for k, v in result["channels"].items()}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

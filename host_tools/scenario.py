"""Scenario runner: the whole firmware from power-on in the simulation.

    python -m host_tools.scenario FILE.json --out DIR

Writes DIR/trace.json (events, per-channel DAC amplitude and enable record, pulse summary, OLED
text at every screen change), DIR/pins.vcd (every GPIO edge of interest), DIR/oled/NNNN_<ms>.png
(one PNG per screen change), DIR/contact_sheet.png and DIR/flash/ (the simulated flash at the end).
The file format is described in host_tools/scenario_core.py and docs/usage.md.
"""
import argparse
import json
import os
import shutil
import sys

from host_tools import scenario_core
from host_tools.vcd import write_vcd

# -- OCR of the visible frame (the text really on the panel, not what the app believes) ---------

_GLYPHS = None


def _glyphs():
    global _GLYPHS
    if _GLYPHS is None:
        from host_tools.sim import framebuf_mod

        f = framebuf_mod.font()
        g = {}
        for i in range(96):
            cols = tuple(f[i * 8:(i + 1) * 8])
            g.setdefault(cols, chr(32 + i))
            inv = tuple(255 - c for c in cols)
            g.setdefault(inv, chr(32 + i))  # highlighted (inverted) rows read the same
        _GLYPHS = g
    return _GLYPHS


def ocr(pixels):
    """Text rows of a 128x64 frame read on the 8x8 character grid the UI draws on. Cells that
    are not a glyph (bars, icons) read as '~'; trailing blanks are stripped."""
    g = _glyphs()
    rows = []
    h = len(pixels)
    w = len(pixels[0]) if h else 0
    for r in range(h // 8):
        line = []
        for c in range(w // 8):
            cols = []
            for x in range(c * 8, c * 8 + 8):
                b = 0
                for y in range(8):
                    if pixels[r * 8 + y][x]:
                        b |= 1 << y
                cols.append(b)
            line.append(g.get(tuple(cols), "~"))
        rows.append("".join(line).rstrip())
    while rows and rows[-1] == "":
        rows.pop()
    return rows


# -- images -----------------------------------------------------------------------------------

def frame_image(pixels, scale=4):
    from PIL import Image

    h = len(pixels)
    w = len(pixels[0])
    img = Image.new("RGB", (w, h), (8, 10, 24))
    put = img.putpixel
    for y in range(h):
        row = pixels[y]
        for x in range(w):
            if row[x]:
                put((x, y), (120, 200, 255))
    return img.resize((w * scale, h * scale), Image.NEAREST)


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

def run_file(path, out_dir, png=True, board=None):
    with open(path) as f:
        try:
            spec = json.load(f)
        except ValueError as e:
            raise scenario_core.ScenarioError("%s is not valid JSON: %s" % (path, e)) from None
    if board is not None and isinstance(spec, dict):
        spec["board"] = board
    return run_spec(spec, out_dir, png)


def run_spec(spec, out_dir=None, png=True):
    from host_tools.sim import flash as flash_mod

    scenario_core.validate(spec)
    run = scenario_core.Run(spec, ocr=ocr, flash_factory=flash_mod.SimFlash)
    trace = run.run()
    result = scenario_core.trace_dict(trace)
    if out_dir is not None:
        write_outputs(run, trace, result, run.flash, out_dir, png)
    return run, result


def write_outputs(run, trace, result, flash, out_dir, png=True):
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "trace.json"), "w") as f:
        json.dump(result, f, indent=1)
    b = trace.board
    wires = []
    for n in (1, 2):
        c = b.CHANNELS[n]
        wires.append(("ch%d_a" % n, scenario_core.merged_edges(trace, c["leg_a"])))
        wires.append(("ch%d_b" % n, scenario_core.merged_edges(trace, c["leg_b"])))
    wires.append(("enable", scenario_core.merged_edges(trace, b.OUTPUT_ENABLE)))
    wires.append(("output_led", scenario_core.merged_edges(trace, b.OUTPUT_LED)))
    for name, gpio in sorted(b.BUTTONS.items(), key=lambda kv: kv[1]):
        wires.append(("btn_" + name, scenario_core.merged_edges(trace, gpio)))
    w0 = trace.boots[0][2]
    write_vcd(os.path.join(out_dir, "pins.vcd"), wires, w0.sys_hz, end_cycle=run._end_cycle)
    fdir = os.path.join(out_dir, "flash")
    if os.path.isdir(fdir):
        shutil.rmtree(fdir)
    flash.dump_to(fdir)
    if png:
        odir = os.path.join(out_dir, "oled")
        if os.path.isdir(odir):
            shutil.rmtree(odir)
        os.makedirs(odir)
        for i, (t_ms, px) in enumerate(trace.frames):
            frame_image(px).save(os.path.join(odir, "%04d_%08dms.png" % (i, t_ms)))
        contact_sheet(trace.frames, os.path.join(out_dir, "contact_sheet.png"))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("scenario", help="scenario JSON file")
    ap.add_argument("--out", required=True, help="output folder")
    ap.add_argument("--no-png", action="store_true", help="skip OLED PNGs (faster)")
    ap.add_argument("--board", choices=["pico", "esp32"], default=None,
                    help="run on this board whatever the file says")
    a = ap.parse_args(argv)
    try:
        run, result = run_file(a.scenario, a.out, png=not a.no_png, board=a.board)
    except scenario_core.ScenarioError as e:
        print("scenario: %s" % e, file=sys.stderr)
        return 2
    except OSError as e:
        print("scenario: cannot read %s: %s" % (a.scenario, e), file=sys.stderr)
        return 2
    n_faults = sum(1 for e in result["events"] if e["kind"] == "fault")
    print(json.dumps({"out": a.out, "events": len(result["events"]),
                      "screens": len(result["screens"]), "faults": n_faults,
                      "pulses": {k: v["pulses"]["pulse_count"]
                                 for k, v in result["channels"].items()}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

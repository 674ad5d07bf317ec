"""The OLED images in docs/img, made from the bundled scenarios (`make docs-images`).

    python -m host_tools.docs_images [--out docs/img]

Runs host_tools/scenarios/demo.json and emg_demo.json through the scenario runner (the whole
firmware on the host simulation, Pico board) into a temporary folder, picks each image's frame by
a rule on the frame's OCR text (the trace's "screens": [t_ms, rows] per frame, in the order of the
PNG files oled/NNNN_<t_ms>ms.png) and copies that PNG to docs/img/<name>.png. A rule that matches
no frame stops the script with a message naming the image and the rule. tests/test_docs_images.py
checks that each rule picks the frame it names and that the committed images are these bytes.
"""
import argparse
import json
import os
import re
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SCENARIOS = {"demo": os.path.join(HERE, "scenarios", "demo.json"),
             "emg_demo": os.path.join(HERE, "scenarios", "emg_demo.json")}
DEFAULT_OUT = os.path.join(ROOT, "docs", "img")


class DocsImageError(Exception):
    pass


# -- what a frame is, from its text rows ------------------------------------------------------

def run_screen(rows):
    """The run screen: 8 rows, `left  mm:ss` on row 2, the keys on row 7."""
    return len(rows) == 8 and rows[2].startswith("left ") and rows[7].startswith("+/- ok:ch")


def output_mark(rows):
    """The run screen's output-active mark (the diamond at x 100-106 of row 0: cells 12-13,
    not a glyph, so OCR reads '~~'); drawn only while the output stage is enabled."""
    return rows[0][12:14] == "~~"


def state(rows, name):
    """Row 1 of the run screen is the state `name` with its countdown (`on         8s`) or
    without one (`waiting`)."""
    return re.match(re.escape(name) + r"(\s+\d+s)?$", rows[1]) is not None


class Rule:
    """Image `name` is the first (or last) frame of `scenario` whose rows satisfy `match`;
    `says` is the rule in words (the error message and the script's listing)."""

    def __init__(self, name, scenario, says, match, which="first"):
        self.name, self.scenario, self.says, self.match, self.which = (
            name, scenario, says, match, which)

    def pick(self, screens):
        """Index of the frame in screens ([t_ms, rows] each); DocsImageError when none."""
        hits = [i for i, (_t, rows) in enumerate(screens) if self.match(rows)]
        if not hits:
            raise DocsImageError("docs/img/%s.png: no frame of %s matches its rule: %s" % (
                self.name, self.scenario, self.says))
        return hits[0] if self.which == "first" else hits[-1]


RULES = [
    Rule("oled_splash", "demo", "the first frame reading 'NMES handheld' (the splash at power-on)",
         lambda r: "  NMES handheld" in r and " not a certified" in r),
    Rule("oled_list", "demo", "the first program list with the cursor on Strengthening",
         lambda r: r[:1] == ["Programs"] and ">Strengthening" in r),
    Rule("oled_detail", "demo", "the first Strengthening detail screen (row 0 'Strengthening', "
         "the keys 'ok:start back' on the last row)",
         lambda r: r[:1] == ["Strengthening"] and r[-1].startswith("ok:start")),
    Rule("oled_check", "demo", "the first pre-start check ('Ready?')",
         lambda r: r[:1] == ["Ready?"]),
    Rule("oled_run_warmup", "demo", "the first run screen: warm-up, channel 1 '0.0mA of   0', "
         "the output mark shown",
         lambda r: run_screen(r) and state(r, "warmup") and r[3] == ">1  0.0mA of   0"
         and output_mark(r)),
    Rule("oled_run_raised", "demo", "the first warm-up run screen with channel 1 at "
         "'12.5mA of  25' (the 25 presses done and the half flowing shown)",
         lambda r: run_screen(r) and state(r, "warmup") and r[3] == ">1 12.5mA of  25"
         and r[6] == "warm-up x0.5" and output_mark(r)),
    Rule("oled_run_on", "demo", "the first run screen after the warm-up whose row 1 starts with "
         "'on' (channel 1 '25.0mA of  25', the output mark shown)",
         lambda r: run_screen(r) and state(r, "on") and r[3] == ">1 25.0mA of  25"
         and output_mark(r)),
    Rule("oled_alert", "demo", "the first alert reading 'STOP pressed'",
         lambda r: r[:1] == ["! ALERT !"] and "STOP pressed" in r),
    Rule("oled_emg_menu", "emg_demo", "the first EMG menu after the calibration (cursor on "
         "Calibrate, 'rest ... max ...' on row 6)",
         lambda r: len(r) == 8 and r[0] == "EMG" and r[1] == ">Calibrate"
         and r[6].startswith("rest ")),
    Rule("oled_emg_calibrate", "emg_demo", "the first frame of the first effort's middle second "
         "('Squeeze hard!', ' 2 s')",
         lambda r: r[:3] == ["Calibrate EMG", "Squeeze hard!", " 2 s"]),
    Rule("oled_emg_cal_done", "emg_demo", "the first calibration result ('Done')",
         lambda r: r[:2] == ["Calibrate EMG", "Done"]),
    Rule("oled_emg_biofeedback", "emg_demo", "the last biofeedback frame at or above the "
         "threshold ('Biofeedback !': the end of the effort above it)",
         lambda r: r[:1] == ["Biofeedback !"], which="last"),
    Rule("oled_emg_try", "emg_demo", "the first EMG run screen waiting for an effort ('try') "
         "with channel 1 set to 12 mA",
         lambda r: run_screen(r) and state(r, "waiting") and r[5].startswith("try ")
         and r[3] == ">1  0.0mA of  12"),
    Rule("oled_emg_assist", "emg_demo", "the first EMG run screen in the contraction's 'on' "
         "phase ('assist')",
         lambda r: run_screen(r) and state(r, "on") and r[5].startswith("assist")),
]


# -- run --------------------------------------------------------------------------------------

def run_scenarios(work, names=None):
    """Each scenario into work/<name>/; {name: screens}."""
    from host_tools import scenario

    screens = {}
    for name in names or sorted(SCENARIOS):
        with open(SCENARIOS[name]) as f:
            spec = json.load(f)
        _run, result = scenario.run_spec(spec, os.path.join(work, name))
        screens[name] = result["screens"]
    return screens


def frame_png(work, scenario_name, index, t_ms):
    """The PNG the runner wrote for frame `index` (oled/NNNN_<t_ms>ms.png)."""
    path = os.path.join(work, scenario_name, "oled", "%04d_%08dms.png" % (index, t_ms))
    if not os.path.exists(path):
        raise DocsImageError("%s: frame %d (%d ms) has no PNG %s" % (
            scenario_name, index, t_ms, path))
    return path


def pick_all(screens, rules=RULES):
    """{image name: (rule, index, t_ms, rows)}; raises DocsImageError naming each image whose
    rule matches nothing."""
    picked, errors = {}, []
    for rule in rules:
        try:
            i = rule.pick(screens[rule.scenario])
        except DocsImageError as e:
            errors.append(str(e))
            continue
        t_ms, rows = screens[rule.scenario][i]
        picked[rule.name] = (rule, i, t_ms, rows)
    if errors:
        raise DocsImageError("\n".join(errors))
    return picked


def build(work):
    """Run the scenarios into `work` and pick the frames: ({image name: (rule, index, t_ms,
    rows, png path)}, {scenario: screens})."""
    screens = run_scenarios(work, sorted({r.scenario for r in RULES}))
    images = {name: (rule, i, t, rows, frame_png(work, rule.scenario, i, t))
              for name, (rule, i, t, rows) in pick_all(screens).items()}
    return images, screens


def write(images, out):
    """Copy each picked frame's PNG to out/<name>.png (only when its bytes differ); [(name,
    written)]."""
    os.makedirs(out, exist_ok=True)
    done = []
    for name, (_rule, _i, _t, _rows, path) in images.items():
        dest = os.path.join(out, name + ".png")
        with open(path, "rb") as f:
            new = f.read()
        old = None
        if os.path.exists(dest):
            with open(dest, "rb") as f:
                old = f.read()
        if old != new:
            with open(dest, "wb") as f:
                f.write(new)
        done.append((name, old != new))
    return done


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--out", default=DEFAULT_OUT, help="folder of the images (docs/img)")
    a = ap.parse_args(argv)
    work = tempfile.mkdtemp(prefix="docs_images_")
    try:
        try:
            images, _screens = build(work)
        except DocsImageError as e:
            print("docs_images: %s" % e, file=sys.stderr)
            return 1
        for name, written in write(images, a.out):
            rule, i, t_ms = images[name][:3]
            print("%-21s %-8s frame %3d at %6d ms %-9s %s" % (
                name, rule.scenario, i, t_ms, "written" if written else "unchanged", rule.says))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

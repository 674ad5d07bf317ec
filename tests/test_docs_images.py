"""docs/img/oled_*.png are the frames host_tools/docs_images.py picks from the bundled scenarios
(make demo, emg_demo), byte for byte: an image that goes stale fails here."""
import glob
import os
import re

import pytest

from host_tools import docs_images

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IMG = os.path.join(ROOT, "docs", "img")

# The frame each rule names, as OCR reads it ('~' = a cell that is not a glyph: icons, bars).
NAMED = {
    "oled_splash": ["", "  NMES handheld", "", "  v0.1.0", "", "", " not a certified",
                    " medical device"],
    "oled_list": ["Programs", " Quad ACL", " Quad knee repl.", ">Strengthening", " Endurance",
                  " Disuse atrophy", " Shoulder sublux"],
    "oled_detail": ["Strengthening", "50 Hz 300 us", "on 8s off 40s", "ramp 2/2 s", "time 15 min",
                    "warm-up 1 min", "ch1+2 together", "ok:start back"],
    "oled_check": ["Ready?", "Electrodes on", "skin, intensity", "starts at 0 mA", "",
                   "Battery 70%", "", "ok:start back"],
    "oled_run_warmup": ["Strengthen  ~~~~", "warmup    60s", "left  15:00", ">1  0.0mA of   0",
                        " 2  0.0mA of   0", "", "warm-up x0.5", "+/- ok:ch bk:||"],
    "oled_run_raised": ["Strengthen  ~~~~", "warmup    56s", "left  14:56", ">1 12.5mA of  25",
                        " 2  0.0mA of   0", "", "warm-up x0.5", "+/- ok:ch bk:||"],
    "oled_run_on": ["Strengthen  ~~~~", "on         8s", "left  13:58", ">1 25.0mA of  25",
                    " 2  0.0mA of   0", "", "bat 70%", "+/- ok:ch bk:||"],
    "oled_alert": ["! ALERT !", "Stopped", "STOP pressed", "", "", "", "", "ok: dismiss"],
    "oled_emg_menu": ["EMG", ">Calibrate", " Biofeedback", " Threshold 30%", " EMG wrist/finge",
                      " EMG quadriceps", "rest 2 max 226", "ok  bk:back"],
    "oled_emg_calibrate": ["Calibrate EMG", "Squeeze hard!", " 2 s", "now 139 uV",
                           "~" * 16, "~" * 16, "~" * 16, "bk: cancel"],
    "oled_emg_cal_done": ["Calibrate EMG", "Done", "rest 2 uV", "max  226 uV", "", "~" * 16,
                          "~" * 16, "ok:save bk"],
    "oled_emg_biofeedback": ["Biofeedback !", "now   89 uV", "thr   69 uV 30%", "pk 105 mean 45",
                             "marks 1 1s", "~" * 16, "~" * 16, "+/-:thr bk:end"],
    "oled_emg_try": ["EMG wrist/  ~~~~", "waiting", "left  29:58", ">1  0.0mA of  12",
                     " 2  0.0mA of   0", "try   30%~~~~~~~", "bat 70%", "+/- ok:ch bk:||"],
    "oled_emg_assist": ["EMG wrist/  ~~~~", "on         5s", "left  29:55", ">1 12.0mA of  12",
                        " 2  0.0mA of   0", "assist30%~~~~~~~", "bat 70%", "+/- ok:ch bk:||"],
}


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """The script's work: both scenarios run, the frames picked, the images written to a fresh
    folder."""
    work = str(tmp_path_factory.mktemp("docs_images_work"))
    out = str(tmp_path_factory.mktemp("docs_images_out"))
    images, screens = docs_images.build(work)
    docs_images.write(images, out)
    return images, screens, out


def test_each_rule_picks_the_frame_it_names(made):
    images, screens, _out = made
    assert sorted(images) == sorted(NAMED)
    for name, (rule, i, t_ms, rows, path) in images.items():
        assert rows == NAMED[name], "%s: the rule (%s) picked frame %d at %d ms: %r" % (
            name, rule.says, i, t_ms, rows)
        # the first (or last) frame showing that text, not a repeat of it
        others = [j for j, (_t, r) in enumerate(screens[rule.scenario]) if r == rows]
        assert i == (others[0] if rule.which == "first" else others[-1]), (name, i, others)
        # and the PNG of that frame (the runner's numbering)
        assert screens[rule.scenario][i][0] == t_ms
        assert os.path.basename(path) == "%04d_%08dms.png" % (i, t_ms)
        assert len(glob.glob(os.path.join(os.path.dirname(path), "*.png"))) == len(
            screens[rule.scenario])


def test_docs_images_are_what_the_script_makes(made):
    _images, _screens, out = made
    stale = []
    for name in NAMED:
        with open(os.path.join(out, name + ".png"), "rb") as f:
            new = f.read()
        path = os.path.join(IMG, name + ".png")
        old = open(path, "rb").read() if os.path.exists(path) else None
        if old != new:
            stale.append("docs/img/%s.png" % name)
    assert not stale, "%s differ from the frames host_tools/docs_images.py picks: run make " \
        "docs-images" % ", ".join(stale)


def test_every_docs_oled_image_has_a_rule_and_a_reference():
    names = {r.name for r in docs_images.RULES}
    files = {os.path.basename(p)[:-4] for p in glob.glob(os.path.join(IMG, "oled_*.png"))}
    assert files - names == set(), "images no rule makes (add a rule to host_tools/docs_images.py)"
    text = ""
    for doc in ("README.md", "docs/usage.md"):
        with open(os.path.join(ROOT, doc)) as f:
            text += f.read()
    referenced = set(re.findall(r"\]\((?:docs/)?img/(oled_\w+)\.png\)", text))
    assert names - referenced == set(), "images no document shows"


def test_a_rule_matching_no_frame_names_the_image():
    rule = [r for r in docs_images.RULES if r.name == "oled_alert"][0]
    screens = [[0, ["Programs", ">Quad ACL"]], [100, ["! ALERT !", "Stopped", "Electrode off"]]]
    with pytest.raises(docs_images.DocsImageError) as e:
        docs_images.pick_all({"demo": screens, "emg_demo": screens}, rules=[rule])
    assert "docs/img/oled_alert.png" in str(e.value) and rule.says in str(e.value)

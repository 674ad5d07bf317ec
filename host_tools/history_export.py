"""Export the unit's session history (history.json, fetched by `make logs`) as CSV and a PNG plot.

    python -m host_tools.history_export out/logs/history.json [--out out/logs]
        -> out/logs/history.csv, out/logs/history.png

One CSV row per session: n, program, minutes (stimulated, tenths), ch1_max_ma, ch2_max_ma (peak
delivered mA after every factor), contractions, end (done / stop / back / fault / battery / usb;
empty for records of older firmware), faults (kinds joined by ";"). The plot has the sessions in
order (the unit has no real-time clock, so the x axis is the session number n): minutes
stimulated per session (bars, coloured by how the session ended) above, the peak delivered mA per
channel below. Records of older firmware (without contractions / end) are exported with what
they have. A file that is not a history gives a message naming the problem and exit status 2.
"""
import argparse
import csv
import json
import os
import sys

COLUMNS = ("n", "program", "minutes", "ch1_max_ma", "ch2_max_ma", "contractions", "end",
           "faults")
END_COLOURS = {"done": "#2a7f3f", "stop": "#c0392b", "back": "#7f8c8d", "fault": "#e67e22",
               "battery": "#8e44ad", "usb": "#2c3e50", "": "#95a5a6"}


class HistoryError(ValueError):
    pass


def load(path):
    """The records of a history.json, oldest first. Raises HistoryError naming the problem."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise HistoryError("%s: no such file (run `make logs` first)" % path) from None
    except (ValueError, UnicodeError) as e:
        raise HistoryError("%s: not JSON (%s)" % (path, e)) from None
    if not isinstance(data, list):
        raise HistoryError("%s: expected a list of session records, got %s"
                           % (path, type(data).__name__))
    out = []
    for i, r in enumerate(data):
        if not isinstance(r, dict) or "program" not in r:
            raise HistoryError("%s: record %d is not a session record: %r" % (path, i, r))
        out.append(r)
    return out


def rows(records):
    """CSV rows (dicts keyed by COLUMNS) for the records; missing fields are left empty."""
    out = []
    for i, r in enumerate(records):
        ma = r.get("max_ma") or []
        out.append({
            "n": r.get("n", i + 1),
            "program": r.get("program", ""),
            "minutes": r.get("minutes", ""),
            "ch1_max_ma": ma[0] if len(ma) > 0 else "",
            "ch2_max_ma": ma[1] if len(ma) > 1 else "",
            "contractions": r.get("contractions", ""),
            "end": r.get("end", ""),
            "faults": ";".join(r.get("faults") or []),
        })
    return out


def write_csv(records, path):
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        for row in rows(records):
            w.writerow(row)
    return path


def _num(v):
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else 0.0


def write_png(records, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 5.5), sharex=True)
    n = [r.get("n", i + 1) for i, r in enumerate(records)]
    if records:
        minutes = [_num(r.get("minutes")) for r in records]
        colours = [END_COLOURS.get(r.get("end", ""), "#95a5a6") for r in records]
        top.bar(n, minutes, color=colours)
        for end in sorted({r.get("end", "") for r in records}):
            top.bar([], [], color=END_COLOURS.get(end, "#95a5a6"), label=end or "(older record)")
        top.legend(title="ended", fontsize=8, ncol=4, loc="upper left")
        for ch, style in ((0, "o-"), (1, "s--")):
            ma = [_num((r.get("max_ma") or [0, 0])[ch]) if len(r.get("max_ma") or []) > ch
                  else 0.0 for r in records]
            bottom.plot(n, ma, style, label="channel %d" % (ch + 1))
        bottom.legend(fontsize=8, loc="upper left")
    else:
        top.text(0.5, 0.5, "no sessions recorded", ha="center", va="center",
                 transform=top.transAxes)
    top.set_ylabel("minutes stimulated")
    top.set_title("Sessions (history.json): minutes and peak delivered intensity")
    bottom.set_ylabel("peak delivered mA")
    bottom.set_xlabel("session number (the unit has no clock: sessions in order)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def export(history_path, out_dir=None):
    """history.json -> out_dir/history.csv and out_dir/history.png (out_dir: the file's folder).
    Returns (csv_path, png_path)."""
    records = load(history_path)
    out_dir = out_dir or os.path.dirname(os.path.abspath(history_path))
    os.makedirs(out_dir, exist_ok=True)
    c = write_csv(records, os.path.join(out_dir, "history.csv"))
    p = write_png(records, os.path.join(out_dir, "history.png"))
    return c, p


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m host_tools.history_export",
                                 description="history.json from the unit -> CSV and PNG plot")
    ap.add_argument("history", help="history.json (make logs puts it in out/logs/)")
    ap.add_argument("--out", default=None, help="folder for history.csv and history.png "
                                                "(default: the history file's folder)")
    a = ap.parse_args(argv)
    try:
        c, p = export(a.history, a.out)
    except HistoryError as e:
        print("history_export: %s" % e, file=sys.stderr)
        return 2
    print("wrote %s and %s" % (c, p))
    return 0


if __name__ == "__main__":
    sys.exit(main())

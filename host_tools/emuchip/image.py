"""Where the MicroPython firmware images for the emulated Pico are.

    image_path("1.28.0")    -> Path of RPI_PICO-v1.28.0.uf2
    available_versions()    -> ["1.25.0", "1.28.0"] (sorted oldest first; [] when none)

Looked up in this order:
  1. the environment variable PICO_FIRMWARE: a .uf2 file (its version is read from its name,
     RPI_PICO-v<version>.uf2, or taken as whatever version is asked for when the name has none),
     or a folder holding RPI_PICO-v*.uf2 files;
  2. <repo>/../shared/micropython/ (the team's copy of the official release images).
When nothing is found, FirmwareNotFound names PICO_FIRMWARE and the folder looked in.
The images are unmodified official MicroPython releases for board RPI_PICO; they are test data
and are never copied into the repository.
"""
import os
import re
from pathlib import Path

ENV = "PICO_FIRMWARE"
ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DIR = ROOT.parent / "shared" / "micropython"
DEFAULT_VERSION = "1.28.0"
_NAME = re.compile(r"^RPI_PICO-v(\d+\.\d+\.\d+)\.uf2$")


class FirmwareNotFound(FileNotFoundError):
    """No MicroPython image for the emulated Pico; the message says where it looked and what to
    do."""


def _vkey(v):
    return tuple(int(x) for x in v.split("."))


def _where():
    env = os.environ.get(ENV)
    if env:
        return Path(env).expanduser(), True
    return DEFAULT_DIR, False


def _images():
    """{version: path} of the images found, and a description of where we looked."""
    where, from_env = _where()
    what = ("%s=%s" % (ENV, where)) if from_env else ("%s (%s is not set)" % (where, ENV))
    found = {}
    if where.is_file() and where.suffix == ".uf2":
        m = _NAME.match(where.name)
        found[m.group(1) if m else "*"] = where
    elif where.is_dir():
        for p in where.glob("RPI_PICO-v*.uf2"):
            m = _NAME.match(p.name)
            if m:
                found[m.group(1)] = p
    return found, what


def available_versions():
    """MicroPython versions with an image, oldest first ([] when none)."""
    found, _ = _images()
    if "*" in found:
        return [DEFAULT_VERSION]
    return sorted(found, key=_vkey)


def image_path(version=DEFAULT_VERSION):
    """The .uf2 image of MicroPython `version` for RPI_PICO; FirmwareNotFound when absent."""
    found, what = _images()
    p = found.get(version) or found.get("*")
    if p is None:
        have = ", ".join(sorted((v for v in found if v != "*"), key=_vkey)) or "none"
        raise FirmwareNotFound(
            "no MicroPython image RPI_PICO-v%s.uf2 for the emulated Pico: looked in %s "
            "(versions found: %s).\nWhat to do: set %s to a RPI_PICO-v<version>.uf2 file or to a "
            "folder holding them (the official MicroPython downloads for board RPI_PICO)."
            % (version, what, have, ENV))
    return p

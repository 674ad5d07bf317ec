"""Device code uses only the real MicroPython API of the Pico, and the simulation provides it.

The micropython-rp2-rpi-pico-stubs package (micropython-stubs) describes the MicroPython API of the
RP2040 port. Every `machine.X`, `rp2.X`, `time.X` and `micropython.X` that firmware/, lib/ or
board_config/ uses must be declared there (so nothing sim-only creeps into device code), and the
simulation's stand-ins must provide each of them (so the sim runs what the device runs)."""
import ast
import os
import site
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DEVICE_DIRS = ("firmware", "lib", "board_config")
MODULES = ("machine", "rp2", "time", "micropython")
# Names of the rp2 PIO assembler DSL are injected by asm_pio, not module attributes.


def _stub_path(mod):
    for d in site.getsitepackages():
        for cand in (Path(d) / (mod + ".pyi"), Path(d) / mod / "__init__.pyi"):
            if cand.exists():
                return cand
    return None


def _stub_names(mod):
    path = _stub_path(mod)
    if path is None:
        pytest.skip("micropython stubs not installed")
    tree = ast.parse(path.read_text())
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                if isinstance(t, ast.Name):
                    names.add(t.id)
        elif isinstance(node, ast.ImportFrom):
            for a in node.names:
                names.add(a.asname or a.name)
    return names


def _used_names():
    """{module: {attr: [where]}} for machine/rp2/time/micropython as device code uses them."""
    used = {m: {} for m in MODULES}
    for d in DEVICE_DIRS:
        for p in sorted((ROOT / d).rglob("*.py")):
            tree = ast.parse(p.read_text())
            aliases = {}
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    for a in node.names:
                        if a.name in MODULES:
                            aliases[a.asname or a.name] = a.name
                elif isinstance(node, ast.ImportFrom) and node.module in MODULES:
                    for a in node.names:
                        used[node.module].setdefault(a.name, []).append(str(p.relative_to(ROOT)))
            for node in ast.walk(tree):
                if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                        and node.value.id in aliases):
                    used[aliases[node.value.id]].setdefault(node.attr, []).append(
                        str(p.relative_to(ROOT)))
    return used


def test_device_code_uses_only_names_the_micropython_stubs_declare():
    used = _used_names()
    missing = []
    for mod in MODULES:
        declared = _stub_names(mod)
        for name, where in used[mod].items():
            if name not in declared:
                missing.append("%s.%s (%s)" % (mod, name, ", ".join(sorted(set(where)))))
    assert missing == []
    assert used["machine"] and used["rp2"] and used["time"]  # the check saw real use


def test_the_simulation_provides_every_name_device_code_uses():
    from host_tools.sim import install

    mods = install._standins()
    used = _used_names()
    missing = []
    for mod in MODULES:
        standin = mods[mod]
        for name in used[mod]:
            if not hasattr(standin, name):
                missing.append("%s.%s" % (mod, name))
    assert missing == []


def test_stub_package_is_the_pinned_pico_one():
    path = _stub_path("machine")
    assert path is not None
    dist = [d for d in os.listdir(path.parent) if d.startswith("micropython_rp2_rpi_pico_stubs")]
    assert dist, "machine.pyi should come from micropython-rp2-rpi-pico-stubs"

"""diagram.json and wokwi.toml (Wokwi simulation of the reference board) against
board_config/pico.py: every wire goes where the board config says, and nothing else is wired."""
import json
import tomllib
from pathlib import Path

import pytest

from host_tools.sim import install

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def board():
    return install.load("board_config.pico")


@pytest.fixture(scope="module")
def diagram():
    return json.loads((ROOT / "diagram.json").read_text())


def _nets(diagram):
    """Union-find over the connections: endpoint -> net id. All Pico GND pins are one net."""
    parent = {}

    def find(x):
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(a, b):
        parent[find(a)] = find(b)

    for a, b, *_ in diagram["connections"]:
        for end in (a, b):
            if end.startswith("pico:GND"):
                union(end, "GND")
        union(a, b)
    return find


def _part(diagram, pid):
    found = [p for p in diagram["parts"] if p["id"] == pid]
    assert len(found) == 1, "diagram.json: one part %r expected" % pid
    return found[0]


def _gp(find, end):
    """The Pico GPIO numbers wired to end."""
    net = find(end)
    return sorted(int(n[len("pico:GP"):]) for n in list(_endpoints) if n.startswith("pico:GP")
                  and find(n) == net)


_endpoints = set()


@pytest.fixture(scope="module")
def find(diagram):
    _endpoints.clear()
    for a, b, *_ in diagram["connections"]:
        _endpoints.update((a, b))
    return _nets(diagram)


def test_diagram_parts(diagram):
    types = sorted(p["type"] for p in diagram["parts"])
    assert types.count("wokwi-pi-pico") == 1
    assert types.count("board-ssd1306") == 1
    assert types.count("wokwi-pushbutton") == 6  # five buttons and the foot switch
    assert types.count("wokwi-led") == 1
    assert types.count("wokwi-logic-analyzer") == 1


def test_oled_on_board_i2c(diagram, find, board):
    assert _gp(find, "oled:SDA") == [board.I2C_SDA]
    assert _gp(find, "oled:SCL") == [board.I2C_SCL]
    # RP2040: GPn carries I2C((n // 2) % 2), SDA on even pins, SCL on odd
    assert (board.I2C_SDA // 2) % 2 == board.I2C_ID and board.I2C_SDA % 2 == 0
    assert (board.I2C_SCL // 2) % 2 == board.I2C_ID and board.I2C_SCL % 2 == 1
    assert int(_part(diagram, "oled")["attrs"]["i2cAddress"], 16) == board.OLED_ADDR
    assert find("oled:GND") == find("GND")
    assert find("oled:VCC") == find("pico:3V3")


def test_buttons_and_foot_switch_to_ground(diagram, find, board):
    wanted = dict(board.BUTTONS)
    wanted["foot"] = board.TRIGGER
    for name, pin in wanted.items():
        _part(diagram, "btn_" + name)
        assert _gp(find, "btn_%s:1.l" % name) == [pin], name
        assert find("btn_%s:2.l" % name) == find("GND"), name


def test_output_led(find, board):
    assert _gp(find, "led_output:A") == [board.OUTPUT_LED]
    assert find("led_output:C") == find("GND")


def test_logic_analyser_on_pulse_pins(diagram, find, board):
    ch = board.CHANNELS
    pins = [ch[1]["leg_a"], ch[1]["leg_b"], ch[2]["leg_a"], ch[2]["leg_b"], board.OUTPUT_ENABLE]
    for d, pin in enumerate(pins):
        assert _gp(find, "logic:D%d" % d) == [pin], "logic analyser D%d" % d
    names = _part(diagram, "logic")["attrs"]["channelNames"].split(",")
    assert names == ["CH1_A", "CH1_B", "CH2_A", "CH2_B", "ENABLE"]
    assert find("logic:GND") == find("GND")


def test_no_other_pico_pin_is_wired(find, board):
    used = sorted({int(e[len("pico:GP"):]) for e in _endpoints if e.startswith("pico:GP")})
    ch = board.CHANNELS
    expected = sorted({board.I2C_SDA, board.I2C_SCL, board.TRIGGER, board.OUTPUT_LED,
                       board.OUTPUT_ENABLE, ch[1]["leg_a"], ch[1]["leg_b"], ch[2]["leg_a"],
                       ch[2]["leg_b"], *board.BUTTONS.values()})
    assert used == expected
    # and no two board functions share a wire
    nets = [find("pico:GP%d" % p) for p in used]
    assert len(set(nets)) == len(nets)


def test_wokwi_toml():
    cfg = tomllib.loads((ROOT / "wokwi.toml").read_text())["wokwi"]
    assert cfg["version"] == 1
    assert cfg["firmware"].endswith(".uf2") and cfg["elf"] == cfg["firmware"]
    assert isinstance(cfg["rfc2217ServerPort"], int)

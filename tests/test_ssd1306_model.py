"""The SSD1306 model fed with hand-written byte streams (datasheet behaviour)."""
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from host_tools.sim.ssd1306_model import SSD1306Model  # noqa: E402

STD_INIT = bytes([0x00, 0xAE, 0x20, 0x00, 0x40, 0xA1, 0xA8, 0x3F, 0xC8, 0xD3, 0x00, 0xDA, 0x12,
                  0xD5, 0x80, 0xD9, 0xF1, 0xDB, 0x30, 0x81, 0xCF, 0xA4, 0xA6, 0x8D, 0x14, 0xAF])


def std():
    m = SSD1306Model()
    m.write(STD_INIT, 10)
    return m


def lit(m):
    return sorted((x, y) for y, row in enumerate(m.pixels()) for x, v in enumerate(row) if v)


def test_reset_state_dark_and_init():
    m = SSD1306Model()
    assert not m.on and m.pixels()[0][0] == 0
    m = std()
    assert m.on and m.charge_pump and m.contrast == 0xCF and m.mode == 0
    assert m.last_write_cycle == 10 and m.frame_count == 0


def test_horizontal_window_wraps_inside_window():
    m = std()
    m.write(bytes([0x00, 0x21, 10, 11, 0x22, 2, 3]))
    m.write(bytes([0x40, 0x01, 0x02, 0x04, 0x08, 0x80]))  # 5th byte wraps to (10, page 2)
    assert lit(m) == [(10, 23), (10, 26), (11, 17), (11, 27)]
    assert m.frame_count == 1


def test_vertical_mode():
    m = std()
    m.write(bytes([0x00, 0x20, 0x01, 0x21, 5, 6, 0x22, 0, 1]))
    m.write(bytes([0x40, 0x01, 0x01, 0x01]))  # (5,p0) (5,p1) (6,p0)
    assert lit(m) == [(5, 0), (5, 8), (6, 0)]


def test_page_mode_and_co_bit():
    m = std()
    # Co=1 control bytes: one command each, then Co=1 data byte, then Co=0 data stream
    m.write(bytes([0x80, 0x20, 0x80, 0x02, 0x80, 0xB3, 0x80, 0x05, 0x80, 0x12,
                   0xC0, 0xFF, 0x40, 0x01]))
    assert m.mode == 2 and m.page == 3
    assert lit(m) == [(x, y) for x, y in sorted([(37, y) for y in range(24, 32)] + [(38, 24)])]


def test_command_arguments_split_across_transactions():
    m = std()
    m.write(bytes([0x80, 0x81]))
    m.write(bytes([0x80, 0x42]))
    assert m.contrast == 0x42


def test_remap_flip_invert_off_entire_on():
    m = std()
    m.write(bytes([0x40, 0x01]))  # (0, 0)
    assert lit(m) == [(0, 0)]
    m.write(bytes([0x00, 0xA0]))
    assert lit(m) == [(127, 0)]
    m.write(bytes([0x00, 0xC0]))
    assert lit(m) == [(127, 63)]
    m.write(bytes([0x00, 0xA1, 0xC8, 0xA7]))
    assert len(lit(m)) == 128 * 64 - 1
    m.write(bytes([0x00, 0xA6, 0xA5]))
    assert len(lit(m)) == 128 * 64
    m.write(bytes([0x00, 0xA4, 0xAE]))
    assert lit(m) == []
    m.write(bytes([0x00, 0xAF, 0x8D, 0x10]))
    assert lit(m) == []  # charge pump off: the internal-VCC module stays dark


def test_start_line_offset_and_multiplex():
    m = std()
    m.write(bytes([0x40, 0x01]))  # RAM row 0
    m.write(bytes([0x00, 0x41]))  # start line 1: RAM row 0 shows on the last row
    assert lit(m) == [(0, 63)]
    # 32 rows driven; with 0xC8 row 0 goes out on COM31, i.e. the middle of this panel
    m.write(bytes([0x00, 0x40, 0xA8, 31]))
    assert lit(m) == [(0, 32)]
    m.write(bytes([0x00, 0xA8, 63, 0xD3, 2]))
    assert lit(m) == [(0, 62)]


def test_bad_input_is_loud():
    m = std()
    with pytest.raises(ValueError):
        m.write(bytes([0x00, 0xFF]))
    with pytest.raises(ValueError):
        m.write(bytes([0x01, 0xAF]))
    with pytest.raises(NotImplementedError):
        m.write(bytes([0x00, 0x2F]))


def _pixels_one_by_one(m):
    # the panel pixel by pixel: RAM row of each panel row (the COM mapping tested above), the
    # segment order, the inverse flag
    if not m.lit():
        return [[0] * 128 for _ in range(64)]
    out = []
    for y in range(64):
        rr = m._ram_row_for_panel_row(y)
        row = []
        for x in range(128):
            if m.entire_on:
                row.append(1)
            elif rr < 0:
                row.append(0)
            else:
                col = x if m.seg_remap else 127 - x
                row.append(((m.ram[(rr >> 3) * 128 + col] >> (rr & 7)) & 1) ^ m.inverted)
        out.append(row)
    return out


@pytest.mark.parametrize("tables", ["bytes.translate", "lists (MicroPython)"])
def test_pixels_fast_paths_match_pixel_by_pixel(monkeypatch, tables):
    import random

    from host_tools.sim import ssd1306_model

    if tables != "bytes.translate":
        monkeypatch.setattr(ssd1306_model, "_BYTE_TABLES", None)
    rnd = random.Random(5)
    m = std()
    for _ in range(60):
        m.ram[:] = bytes(rnd.getrandbits(8) if rnd.random() < 0.3 else 0 for _ in range(1024))
        cmds = [0x00, rnd.choice([0xA0, 0xA1]), rnd.choice([0xC0, 0xC8]),
                rnd.choice([0xA6, 0xA7]), rnd.choice([0xA4, 0xA4, 0xA4, 0xA5]),
                0xA8, rnd.randrange(15, 64), 0xD3, rnd.randrange(64), 0x40 + rnd.randrange(64),
                0xDA, rnd.choice([0x02, 0x12, 0x22, 0x32]), rnd.choice([0xAF, 0xAF, 0xAE])]
        m.write(bytes(cmds))
        assert m.pixels() == _pixels_one_by_one(m), cmds
        for c in (0xA8, 0xD3):  # one setting changed alone (each keys the row mapping)
            m.write(bytes([0x00, c, rnd.randrange(15, 64)]))
            assert m.pixels() == _pixels_one_by_one(m), (cmds, c)
        for cmd in (0x40 + rnd.randrange(64), rnd.choice([0xC0, 0xC8]), 0xDA):
            m.write(bytes([0x00, cmd] + ([rnd.choice([0x02, 0x12, 0x22, 0x32])] if cmd == 0xDA
                                         else [])))
            assert m.pixels() == _pixels_one_by_one(m), (cmds, cmd)


def test_data_blocks_land_as_byte_by_byte(monkeypatch):
    """write() takes a data-only transaction in horizontal addressing a window row at a time
    (ssd1306_model.FAST); byte by byte, the datasheet's pointer rules one step at a time, must
    leave the same RAM and pointers: random windows (0x21/0x22), start pointers and lengths,
    including wraps past the window's last page, and page addressing (not the fast path)."""
    import random

    from host_tools.sim import ssd1306_model as M

    rnd = random.Random(7)
    for _trial in range(300):
        c0 = rnd.randrange(128)
        c1 = rnd.randrange(c0, 128)
        p0 = rnd.randrange(8)
        p1 = rnd.randrange(p0, 8)
        mode = rnd.choice([0, 0, 0, 2])
        cmds = bytes([0x00, 0x20, mode, 0x21, c0, c1, 0x22, p0, p1])
        data = bytes([0x40]) + bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 1400)))
        more = bytes([0x40]) + bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 300)))
        got = []
        for fast in (True, False):
            monkeypatch.setattr(M, "FAST", fast)
            m = M.SSD1306Model()
            m.write(cmds)
            m.write(data)
            m.write(more)
            got.append((bytes(m.ram), m.col, m.page, m.data_bytes, m.frame_count))
        assert got[0] == got[1], (c0, c1, p0, p1, mode, len(data))


def test_page_transfers_land_as_byte_by_byte(monkeypatch):
    """The driver's page transfer (lib/ssd1306.py: single commands for the page and column, then
    Co = 0 data): after the data control byte the rest is taken a window row at a time in page
    addressing (ssd1306_model.FAST); byte by byte must leave the same RAM, pointers and counts,
    with random column windows, start columns (inside and outside the window), pages and lengths
    that wrap at the window's end, and in the other addressing modes."""
    import random

    from host_tools.sim import ssd1306_model as M

    rnd = random.Random(8)
    for _trial in range(300):
        c0 = rnd.randrange(128)
        c1 = rnd.randrange(c0, 128)
        mode = rnd.choice([2, 2, 2, 0, 1])
        setup = bytes([0x00, 0x20, mode, 0x21, c0, c1, 0x22, 0, 7])
        transfers = []
        for _ in range(rnd.randrange(1, 4)):
            page = rnd.randrange(8)
            col = rnd.choice([c0, c1, rnd.randrange(c0, c1 + 1), rnd.randrange(128)])
            head = bytes([0x80, 0xB0 | page, 0x80, col & 0x0F, 0x80, 0x10 | (col >> 4), 0x40])
            n = rnd.choice([1, c1 - c0 + 1, 128, rnd.randrange(1, 400)])
            transfers.append(head + bytes(rnd.randrange(256) for _ in range(n)))
        got = []
        for fast in (True, False):
            monkeypatch.setattr(M, "FAST", fast)
            m = M.SSD1306Model()
            m.write(setup)
            for t in transfers:
                m.write(t)
            got.append((bytes(m.ram), m.col, m.page, m.data_bytes, m.frame_count))
        assert got[0] == got[1], (c0, c1, mode, transfers)

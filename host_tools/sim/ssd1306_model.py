# A model of the SSD1306 OLED controller on I2C and of the 128x64 panel behind it.
#
# Written in the common subset of CPython and MicroPython (no CPython-only modules).
#
# It decodes the byte stream of each I2C write transaction (one write(data, cycle) call = one
# START ... STOP to address 0x3C) exactly as the controller does:
#   - every transaction starts with a control byte: bit 7 Co (continuation), bit 6 D/C#;
#     Co=0: every following byte up to STOP is data (D/C#=1) or commands (D/C#=0);
#     Co=1: exactly one data/command byte follows, then another control byte;
#   - commands with arguments may be split across control bytes and across transactions
#     (the Adafruit driver sends each byte of a command in its own transaction), so the
#     command parser keeps its state between writes;
#   - data bytes go to display RAM (GDDRAM: 8 pages x 128 columns, bit 0 = top row of a page) at
#     the column/page pointer, which moves as the addressing mode says (horizontal, vertical,
#     page), inside the column and page windows set by 0x21 / 0x22.
#
# pixels() renders what the panel shows: display on/off, charge pump, entire-display-on, inverse,
# segment remap, COM scan direction, multiplex ratio, display start line, display offset and COM
# pin configuration. The panel wiring is that of the common 128x64 module (alternative COM pin
# configuration, 0xDA 0x12): with the usual init (0xA1, 0xC8, 0xDA 0x12, start line 0, offset 0)
# RAM bit (page p, bit b, column x) appears at panel row 8p+b, column x; other settings mirror,
# shift or interleave the image the way they do on such a module. The module is modelled with the
# internal charge pump (no external VCC): nothing lights unless 0x8D 0x14 was sent.
#
# Not modelled (accepted and recorded, do not change pixels): scrolling (0x26/0x27/0x29/0x2A/0xA3;
# 0x2F activate raises, since the image would move), fade/blink (0x23), zoom (0xD6), clock,
# precharge, VCOMH and IREF values (stored only). An unknown command raises ValueError.

WIDTH = 128
HEIGHT = 64

# command -> number of argument bytes (commands not listed here and not in a range below: 0 args)
_ARGS = {
    0x20: 1,  # memory addressing mode
    0x21: 2,  # column address window
    0x22: 2,  # page address window
    0x23: 1,  # fade out / blink (SSD1306B)
    0x26: 6, 0x27: 6,  # horizontal scroll setup
    0x29: 5, 0x2A: 5,  # vertical and horizontal scroll setup
    0x81: 1,  # contrast
    0x8D: 1,  # charge pump
    0xA3: 2,  # vertical scroll area
    0xA8: 1,  # multiplex ratio
    0xAD: 1,  # internal IREF selection (SSD1306B)
    0xD3: 1,  # display offset
    0xD5: 1,  # display clock divide / oscillator
    0xD6: 1,  # zoom in
    0xD9: 1,  # precharge period
    0xDA: 1,  # COM pins hardware configuration
    0xDB: 1,  # VCOMH deselect level
}

HORIZONTAL = 0
VERTICAL = 1
PAGE = 2

# pixels(): bit b of a RAM byte (xor the inverse flag), as lists [inv][b][byte], and on CPython
# as bytes.translate tables (MicroPython's bytes has no translate)
_LIST_TABLES = [[[((v >> b) & 1) ^ inv for v in range(256)] for b in range(8)] for inv in (0, 1)]
_BYTE_TABLES = None
if hasattr(b"", "translate"):
    _BYTE_TABLES = [[bytes(t) for t in _LIST_TABLES[inv]] for inv in (0, 1)]


# write(): a data-only transaction in horizontal addressing goes in by window rows (False: byte
# by byte, the datasheet's pointer rules one step at a time; tests compare the two)
FAST = True


class SSD1306Model:
    def __init__(self, name="oled"):
        self.name = name
        self.ram = bytearray(WIDTH * 8)
        self._rows_key = None  # COM settings for which _rows (panel row -> RAM row) was made
        self._rows = None
        self.reset()
        self.frame_count = 0  # write transactions that carried display data
        self.last_write_cycle = None
        self.last_data_cycle = None
        self.writes = 0
        self.data_bytes = 0
        self.command_count = 0

    # -- power-on reset state (datasheet section 10, reset values) ------------------------
    def reset(self):
        self.on = False
        self.contrast = 0x7F
        self.inverted = False
        self.entire_on = False
        self.seg_remap = False
        self.com_remap = False
        self.mux = 63  # multiplex ratio - 1
        self.start_line = 0
        self.offset = 0
        self.com_cfg = 0x12
        self.charge_pump = False
        self.clock_div = 0x80
        self.precharge = 0x22
        self.vcomh = 0x20
        self.iref = 0x00
        self.mode = PAGE
        self.col_start = 0
        self.col_end = WIDTH - 1
        self.page_start = 0
        self.page_end = 7
        self.col = 0
        self.page = 0
        self.page_col_start = 0
        self.scroll_active = False
        self.scroll_setup = None
        self._cmd = None  # pending command waiting for arguments
        self._args = []
        self._need = 0

    # -- the bus side ----------------------------------------------------------------------
    def write(self, data, cycle=0):
        """One I2C write transaction (START, address+W, data..., STOP) at the given cycle."""
        self.writes += 1
        self.last_write_cycle = cycle
        if (FAST and len(data) > 1 and data[0] == 0x40 and self.mode == HORIZONTAL
                and self.col_start <= self.col <= self.col_end < WIDTH
                and self.page_start <= self.page <= self.page_end < 8):
            self._data_block(data)
            self.frame_count += 1
            self.last_data_cycle = cycle
            return len(data)
        expect_control = True
        single = False
        is_data = False
        had_data = False
        n = len(data)
        i = 0
        while i < n:
            b = data[i]
            i += 1
            if expect_control:
                single = bool(b & 0x80)
                is_data = bool(b & 0x40)
                if b & 0x3F:
                    raise ValueError("SSD1306: control byte 0x%02x has low bits set" % b)
                expect_control = False
                if FAST and is_data and not single and i < n and self._page_block(data, i):
                    had_data = True  # (Co = 0: every byte after this one is data)
                    break
                continue
            if is_data:
                self._data(b)
                had_data = True
            else:
                self._command_byte(b)
            if single:
                expect_control = True
        if had_data:
            self.frame_count += 1
            self.last_data_cycle = cycle
        return len(data)

    def read(self, n, cycle=0):
        """Status read: bit 6 set while the display is off."""
        self.last_write_cycle = cycle
        return bytes([0x40 if not self.on else 0x00] * n)

    # -- display RAM -------------------------------------------------------------------------
    def _data_block(self, data):
        """data[1:] (after a 0x40 control byte: all data) in horizontal addressing, a window row
        at a time: the RAM and the pointers _data() byte by byte would leave (FAST)."""
        ram = self.ram
        i = 1
        n = len(data)
        self.data_bytes += n - 1
        while i < n:
            span = self.col_end - self.col + 1
            take = n - i if n - i < span else span
            base = self.page * WIDTH + self.col
            ram[base:base + take] = data[i:i + take]
            i += take
            if take == span:
                self.col = self.col_start
                self.page = self.page_start if self.page >= self.page_end else self.page + 1
            else:
                self.col += take

    def _page_block(self, data, i):
        """data[i:] (all data) in page addressing, a window row at a time, when the column
        pointer is inside the column window: the RAM and pointers _data() byte by byte would
        leave (FAST; lib/ssd1306.py sends each page this way). False: not that case, nothing
        written."""
        if not (self.mode == PAGE and self.col_start <= self.col <= self.col_end < WIDTH
                and self.page < 8):
            return False
        ram = self.ram
        n = len(data)
        self.data_bytes += n - i
        base = self.page * WIDTH
        while i < n:
            span = self.col_end - self.col + 1
            take = n - i if n - i < span else span
            c = base + self.col
            ram[c:c + take] = data[i:i + take]
            i += take
            if take == span:
                self.col = self.col_start  # the column end: back to the window's start
            else:
                self.col += take
        return True

    def _data(self, b):
        self.data_bytes += 1
        self.ram[self.page * WIDTH + self.col] = b
        if self.mode == HORIZONTAL:
            if self.col >= self.col_end:
                self.col = self.col_start
                self.page = self.page_start if self.page >= self.page_end else self.page + 1
            else:
                self.col += 1
        elif self.mode == VERTICAL:
            if self.page >= self.page_end:
                self.page = self.page_start
                self.col = self.col_start if self.col >= self.col_end else self.col + 1
            else:
                self.page += 1
        else:
            # page addressing (datasheet 10.1.3): at the column end address the pointer goes
            # back to the column start address (the 0x21 window); the page does not change
            self.col = self.col_start if self.col >= self.col_end else self.col + 1

    # -- commands ----------------------------------------------------------------------------
    def _command_byte(self, b):
        if self._cmd is not None:
            self._args.append(b)
            if len(self._args) >= self._need:
                cmd = self._cmd
                args = self._args
                self._cmd = None
                self._args = []
                self._execute(cmd, args)
            return
        need = _ARGS.get(b, 0)
        if need:
            self._cmd = b
            self._need = need
            self._args = []
        else:
            self._execute(b, None)

    def _execute(self, c, a):
        self.command_count += 1
        if c <= 0x0F:  # lower column nibble (page mode)
            self.page_col_start = (self.page_col_start & 0xF0) | c
            self.col = self.page_col_start
        elif c <= 0x1F:  # higher column nibble (page mode)
            self.page_col_start = (self.page_col_start & 0x0F) | ((c & 0x07) << 4)
            self.col = self.page_col_start
        elif c == 0x20:
            if (a[0] & 3) == 3:
                raise ValueError("SSD1306: addressing mode 3 is invalid")
            self.mode = a[0] & 3
        elif c == 0x21:
            self.col_start = a[0] & 0x7F
            self.col_end = a[1] & 0x7F
            self.col = self.col_start
        elif c == 0x22:
            self.page_start = a[0] & 7
            self.page_end = a[1] & 7
            self.page = self.page_start
        elif c == 0x23 or c == 0xD6 or c == 0xA3:
            pass
        elif c in (0x26, 0x27, 0x29, 0x2A):
            self.scroll_setup = (c, list(a))
        elif c == 0x2E:
            self.scroll_active = False
        elif c == 0x2F:
            raise NotImplementedError("SSD1306 model: scrolling (0x2F) is not modelled")
        elif 0x40 <= c <= 0x7F:
            self.start_line = c & 0x3F
        elif c == 0x81:
            self.contrast = a[0]
        elif c == 0x8D:
            self.charge_pump = bool(a[0] & 0x04)
        elif c == 0xA0 or c == 0xA1:
            self.seg_remap = c == 0xA1
        elif c == 0xA4 or c == 0xA5:
            self.entire_on = c == 0xA5
        elif c == 0xA6 or c == 0xA7:
            self.inverted = c == 0xA7
        elif c == 0xA8:
            if a[0] & 0x3F < 15:
                raise ValueError("SSD1306: multiplex ratio %d below 16" % ((a[0] & 0x3F) + 1))
            self.mux = a[0] & 0x3F
        elif c == 0xAD:
            self.iref = a[0]
        elif c == 0xAE or c == 0xAF:
            self.on = c == 0xAF
        elif 0xB0 <= c <= 0xB7:
            self.page = c & 7
        elif c == 0xC0 or c == 0xC8:
            self.com_remap = c == 0xC8
        elif c == 0xD3:
            self.offset = a[0] & 0x3F
        elif c == 0xD5:
            self.clock_div = a[0]
        elif c == 0xD9:
            self.precharge = a[0]
        elif c == 0xDA:
            self.com_cfg = a[0] & 0x32
        elif c == 0xDB:
            self.vcomh = a[0]
        elif c == 0xE3:
            pass  # NOP
        else:
            raise ValueError("SSD1306 model: unknown command 0x%02x" % c)

    # -- what the panel shows ----------------------------------------------------------------
    def lit(self):
        """True when the panel emits light at all (display on and its supply running)."""
        return self.on and self.charge_pump

    def _ram_row_for_panel_row(self, y):
        """RAM row shown on panel row y, or -1 if that row is not driven."""
        # Module wiring: with the alternative COM pin configuration (0xDA 0x12) panel row y is
        # driven by COM(63 - y). That configuration puts COM0..31 on pins 0, 2, 4... and
        # COM32..63 on pins 1, 3, 5...; with the sequential one (0xDA 0x02) COMn is on pin n, so
        # the same panel row then shows the interleaved COM of that pin.
        c = 63 - y
        if not (self.com_cfg & 0x10):
            c = 2 * c if c < 32 else 2 * (c - 32) + 1
        if self.com_cfg & 0x20:
            c ^= 32  # COM left/right remap
        n = self.mux + 1
        if self.com_remap:
            r = (n - 1 - c + self.offset) % 64
        else:
            r = (c + self.offset) % 64
        if r >= n:
            return -1
        return (self.start_line + r) % 64

    def _panel_rows(self):
        """RAM row shown on each panel row (-1: not driven), cached per COM setting."""
        key = (self.com_cfg, self.mux, self.com_remap, self.offset, self.start_line)
        if self._rows_key != key:
            self._rows = [self._ram_row_for_panel_row(y) for y in range(HEIGHT)]
            self._rows_key = key
        return self._rows

    def pixels(self):
        """64 rows of 128 ints (0/1): the panel as a person sees it (contrast aside)."""
        if not self.lit():
            return [[0] * WIDTH for _ in range(HEIGHT)]
        if self.entire_on:
            return [[1] * WIDTH for _ in range(HEIGHT)]
        ram = self.ram
        inv = 1 if self.inverted else 0
        rows = self._panel_rows()
        out = []
        if _BYTE_TABLES is not None:
            # CPython: one page of RAM in panel column order, then each row's bit by a table
            pages = []
            for p in range(8):
                seg = bytes(ram[p * WIDTH:(p + 1) * WIDTH])
                pages.append(seg if self.seg_remap else seg[::-1])
            tables = _BYTE_TABLES[inv]
            for rr in rows:
                if rr < 0:
                    out.append([0] * WIDTH)
                else:
                    out.append(list(pages[rr >> 3].translate(tables[rr & 7])))
            return out
        cols = range(WIDTH) if self.seg_remap else range(WIDTH - 1, -1, -1)
        tables = _LIST_TABLES[inv]
        for rr in rows:
            if rr < 0:
                out.append([0] * WIDTH)
            else:
                base = (rr >> 3) * WIDTH
                t = tables[rr & 7]
                out.append([t[ram[base + x]] for x in cols])
        return out

    def ram_pixels(self):
        """Display RAM as 64 rows of 128 ints, in RAM order (no panel mapping)."""
        out = []
        for y in range(HEIGHT):
            base = (y >> 3) * WIDTH
            bit = y & 7
            out.append([(self.ram[base + x] >> bit) & 1 for x in range(WIDTH)])
        return out

    def text(self, on="#", off="."):
        """The visible panel as 64 lines of text, for traces and failing-test messages."""
        return "\n".join("".join(on if v else off for v in row) for row in self.pixels())

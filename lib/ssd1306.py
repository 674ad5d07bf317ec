# SSD1306 128x64 OLED over I2C, as a framebuf.FrameBuffer (MONO_VLSB: one byte = 8 rows of one
# column, bit 0 on top; byte index = page * width + x, which is the controller's own RAM layout).
#
# show() sends only the pages (8-row bands, 128 bytes each) that changed since the last show():
# a shadow copy of what the panel holds is compared page by page through preallocated memoryviews,
# so show() allocates nothing in steady state. Each changed page goes out as one I2C transaction:
#   0x80 B0|page  0x80 00  0x80 10  0x40  <128 data bytes>
# (Co=1 command bytes set the page and column 0 in page addressing mode, then Co=0 D/C=1: data to
# the stop condition). With machine.I2C.writevto the header and the page are sent without a copy;
# an I2C object without writevto gets one preallocated 135-byte buffer instead.
#
# Register numbers are from the SSD1306 datasheet (Solomon Systech, rev 1.1, section 9 and 10).
from micropython import const
import framebuf

_SET_CONTRAST = const(0x81)
_SET_ENTIRE_ON = const(0xA4)
_SET_NORM_INV = const(0xA6)
_SET_DISP = const(0xAE)
_SET_MEM_ADDR = const(0x20)
_SET_DISP_START_LINE = const(0x40)
_SET_SEG_REMAP = const(0xA0)
_SET_MUX_RATIO = const(0xA8)
_SET_COM_OUT_DIR = const(0xC0)
_SET_DISP_OFFSET = const(0xD3)
_SET_COM_PIN_CFG = const(0xDA)
_SET_DISP_CLK_DIV = const(0xD5)
_SET_PRECHARGE = const(0xD9)
_SET_VCOM_DESEL = const(0xDB)
_SET_CHARGE_PUMP = const(0x8D)
_SET_PAGE_START = const(0xB0)

_CTRL_CMD_LAST = const(0x00)  # Co=0 D/C=0: the rest of the transaction is commands
_CTRL_CMD_ONE = const(0x80)  # Co=1 D/C=0: one command byte, then another control byte
_CTRL_DATA = const(0x40)  # Co=0 D/C=1: the rest of the transaction is display RAM data


# dim(level): level 0 = full brightness ... 3 = dimmest; contrast values per level.
_DIM_CONTRAST = (0xCF, 0x60, 0x20, 0x01)


class SSD1306_I2C(framebuf.FrameBuffer):
    """128x64 (or 128x32) SSD1306 on I2C.

    i2c: machine.I2C (or anything with writeto(addr, buf), optionally writevto(addr, bufs)).
    """

    def __init__(self, width, height, i2c, addr=0x3C, external_vcc=False):
        self.width = width
        self.height = height
        self.pages = height // 8
        self.i2c = i2c
        self.addr = addr
        self.external_vcc = external_vcc
        n = self.pages * width
        self.buffer = bytearray(n)
        self._shadow = bytearray(n)
        super().__init__(self.buffer, width, height, framebuf.MONO_VLSB)
        mv = memoryview(self.buffer)
        sh = memoryview(self._shadow)
        # One memoryview per page, made once: comparing and copying them allocates nothing.
        self._page_mv = [mv[p * width:(p + 1) * width] for p in range(self.pages)]
        self._shadow_mv = [sh[p * width:(p + 1) * width] for p in range(self.pages)]
        self._hdr = bytearray((_CTRL_CMD_ONE, _SET_PAGE_START, _CTRL_CMD_ONE, 0x00,
                               _CTRL_CMD_ONE, 0x10, _CTRL_DATA))
        self._cmd = bytearray(2)
        self._cmd[0] = _CTRL_CMD_LAST
        # machine.I2C and machine.SoftI2C both have writevto: header and page go out as one
        # transfer with no copy
        self._vto = [self._hdr, self._page_mv[0]]
        self._valid = False  # panel RAM unknown until the first full show()
        self.is_on = False
        self.level = 0
        self.init_display()

    # -- commands --------------------------------------------------------------------------
    def write_cmd(self, cmd):
        c = self._cmd
        c[1] = cmd
        self.i2c.writeto(self.addr, c)

    def init_display(self):
        for cmd in (
            _SET_DISP,  # display off while configuring
            _SET_MEM_ADDR, 0x02,  # page addressing mode: show() sets page and column itself
            _SET_DISP_START_LINE | 0,
            _SET_SEG_REMAP | 0x01,  # RAM column 127 on SEG0: x = 0 at the left of the module
            _SET_MUX_RATIO, self.height - 1,
            _SET_COM_OUT_DIR | 0x08,  # scan COM[N-1] -> COM0: y = 0 at the top
            _SET_DISP_OFFSET, 0x00,
            _SET_COM_PIN_CFG, 0x02 if self.width > 2 * self.height else 0x12,
            _SET_DISP_CLK_DIV, 0x80,
            _SET_PRECHARGE, 0x22 if self.external_vcc else 0xF1,
            _SET_VCOM_DESEL, 0x30,
            _SET_CONTRAST, _DIM_CONTRAST[0],
            _SET_ENTIRE_ON,  # output follows RAM
            _SET_NORM_INV,  # not inverted
            _SET_CHARGE_PUMP, 0x10 if self.external_vcc else 0x14,
        ):
            self.write_cmd(cmd)
        self.fill(0)
        self._valid = False
        self.show()
        self.poweron()

    def poweroff(self):
        self.write_cmd(_SET_DISP)
        self.is_on = False

    def poweron(self):
        self.write_cmd(_SET_DISP | 0x01)
        self.is_on = True

    def contrast(self, value):
        self.write_cmd(_SET_CONTRAST)
        self.write_cmd(value & 0xFF)

    def invert(self, on):
        self.write_cmd(_SET_NORM_INV | (1 if on else 0))

    def dim(self, level):
        """0 = full brightness, 1..3 dimmer (through the contrast register)."""
        if level < 0:
            level = 0
        elif level > 3:
            level = 3
        self.level = level
        self.contrast(_DIM_CONTRAST[level])

    # -- frame -----------------------------------------------------------------------------
    def show(self, force=False):
        """Send the pages that changed since the last show(); returns how many were sent."""
        full = force or not self._valid
        sent = 0
        for p in range(self.pages):
            src = self._page_mv[p]
            dst = self._shadow_mv[p]
            if full or not (src == dst):
                dst[:] = src
                self._send_page(p)
                sent += 1
        self._valid = True
        return sent

    def _send_page(self, page):
        self._hdr[1] = _SET_PAGE_START | page
        v = self._vto
        v[1] = self._page_mv[page]
        self.i2c.writevto(self.addr, v)

# lib/ssd1306.py over the simulated machine.I2C into the SSD1306 model, on CPython (framebuf
# stand-in) and on the MicroPython unix port (real framebuf): what the model's panel shows must be
# exactly the driver's framebuffer, and only changed pages go over the bus.
from host_tools.sim import install, world
from host_tools.sim.ssd1306_model import SSD1306Model


def rig():
    w = world.new_world()
    model = SSD1306Model()
    w.i2c_devices[0x3C] = model
    ssd1306 = install.load("ssd1306")
    install.restore_time()
    machine = install._standins()["machine"]
    i2c = machine.I2C(0, scl=machine.Pin(1), sda=machine.Pin(0), freq=400_000)
    oled = ssd1306.SSD1306_I2C(128, 64, i2c)
    return w, model, oled


def fb_pixels(fb):
    return [[fb.pixel(x, y) for x in range(128)] for y in range(64)]


def test_panel_shows_the_framebuffer():
    w, model, oled = rig()
    assert model.lit() and model.pixels() == fb_pixels(oled)
    oled.text("NMES 2ch", 0, 0, 1)
    oled.text("12.5mA", 8, 24, 1)
    oled.rect(0, 40, 128, 24, 1)
    oled.line(0, 63, 127, 40, 1)
    t0 = w.now
    n0 = model.frame_count
    assert oled.show() == 5  # pages 0 (text), 3 (text), 5, 6, 7 (rect, line)
    assert model.frame_count - n0 == 5
    assert model.pixels() == fb_pixels(oled)
    # 5 transactions of address + 7 header + 128 data bytes, 9 bits each + start/stop, 400 kHz
    per = (9 * (1 + 7 + 128) + 2) * w.sys_hz // 400_000
    assert per * 5 <= w.now - t0 <= (per + 1) * 5
    assert model.last_write_cycle >= t0


def test_only_changed_pages_are_sent():
    w, model, oled = rig()
    oled.fill(0)
    oled.show()
    n0 = model.frame_count
    assert oled.show() == 0 and model.frame_count == n0
    oled.pixel(5, 17, 1)  # page 2
    oled.pixel(100, 63, 1)  # page 7
    assert oled.show() == 2 and model.frame_count == n0 + 2
    assert model.pixels() == fb_pixels(oled)


def test_dim_invert_power():
    w, model, oled = rig()
    oled.dim(2)
    assert oled.level == 2 and model.contrast == 0x20
    oled.dim(0)
    assert model.contrast == 0xCF
    oled.pixel(0, 0, 1)
    oled.show()
    oled.invert(True)
    assert model.pixels()[0][0] == 0 and model.pixels()[0][1] == 1
    oled.invert(False)
    oled.poweroff()
    assert not model.on and model.pixels()[0][0] == 0
    oled.poweron()
    assert model.pixels()[0][0] == 1

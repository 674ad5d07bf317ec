"""The esp32 stand-in's RMT model (host_tools/sim/esp32.py) against MicroPython 1.25+ semantics."""
import pytest

from host_tools.sim import esp32 as sim_esp32
from host_tools.sim import install


@pytest.fixture()
def w():
    world, _board = install.board_world("esp32")
    return world


def _rmt(**kw):
    import esp32

    return esp32.RMT(**kw)


def test_esp32_module_is_installed_and_world_is_80mhz(w):
    import esp32
    import machine

    assert esp32 is sim_esp32
    assert esp32.RMT.source_freq() == 80_000_000 and w.sys_hz == 80_000_000
    assert machine.freq() == 240_000_000
    assert esp32.RMT.PULSE_MAX == 32767


def test_resolution_rounds_to_the_8_bit_divider(w):
    r = _rmt(pin=4, resolution_hz=10_000_000)
    assert r.clock_div() == 8 and r.resolution_hz == 10_000_000
    r2 = _rmt(pin=5, resolution_hz=3_000_000)  # 80/3 = 26.7 -> 27
    assert r2.clock_div() == 27 and r2.resolution_hz == 80_000_000 // 27
    with pytest.raises(ValueError):
        _rmt(pin=13, resolution_hz=300_000)  # divider 267 > 255
    with pytest.raises(ValueError):
        _rmt(pin=13, resolution_hz=1_000_000, clock_div=80)
    with pytest.raises(ValueError):
        _rmt(pin=13, num_symbols=63)


def test_write_pulses_modes_and_exact_edges(w):
    r = _rmt(pin=16, resolution_hz=40_000_000, idle_level=0)  # 2 cycles per tick
    t0 = w.now
    r.write_pulses((10, 20, 30), 1)  # mode 1: 1 for 10, 0 for 20, 1 for 30
    start = t0 + w.cycles(sim_esp32.WRITE_PULSES_NS)
    assert w.now == start  # the call took its CPU time
    w.advance_to(w.now + 1000)
    w.sync()
    assert w.gpio.edges[16][1:] == [(start, 1), (start + 20, 0), (start + 60, 1), (start + 120, 0)]
    assert r.wait_done() is True
    s2 = w.now + w.cycles(sim_esp32.WRITE_PULSES_NS)
    r.write_pulses(5, [1, 1, 0, 1])  # mode 2
    r.wait_done(timeout=1)
    assert w.gpio.edges[16][-4:] == [(s2, 1), (s2 + 20, 0), (s2 + 30, 1), (s2 + 40, 0)]
    s3 = w.now + w.cycles(sim_esp32.WRITE_PULSES_NS)
    r.write_pulses([3, 4], [0, 1])  # mode 3
    r.wait_done(timeout=1)
    assert w.gpio.edges[16][-2:] == [(s3 + 6, 1), (s3 + 14, 0)]  # then idle low
    with pytest.raises(ValueError):
        r.write_pulses([0, 5], 1)
    with pytest.raises(ValueError):
        r.write_pulses([32768], 1)
    with pytest.raises(ValueError):
        r.write_pulses([1, 2], [1])


def test_loop_wraps_without_gap_and_loop_count_0_finishes_the_iteration(w):
    r = _rmt(pin=17, resolution_hz=80_000_000)
    r.loop_count(-1)
    r.write_pulses([100, 300], [1, 0])
    start = w.now
    w.advance_to(start + 950)  # inside the 3rd iteration's low half
    assert w.gpio.level(17) == 0
    assert r.active()
    with pytest.raises(RuntimeError):
        r.write_pulses([5, 5], 1)  # would wait forever on the chip
    r.loop_count(0)  # busy-waits to the end of the iteration
    assert w.now == start + 1200
    highs = [c for c, lv in w.gpio.edges[17][1:] if lv == 1]
    assert highs == [start, start + 400, start + 800]
    assert w.gpio.edges[17][-1] == (start + 900, 0)
    assert not r.active() and r.wait_done()
    assert w.events == []


def test_long_busy_wait_is_recorded_as_an_interrupt_watchdog_hazard(w):
    r = _rmt(pin=18, resolution_hz=1_000_000)
    r.loop(True)
    r.write_pulses([30000, 30000] * 10, 1)  # 600 ms per iteration
    w.advance_to(w.now + 80_000)
    r.active(False)
    assert [e["kind"] for e in w.events] == ["rmt_disable_iwdt"]


def test_loop_needs_the_pattern_and_end_marker_in_channel_memory(w):
    r = _rmt(pin=19, num_symbols=64)
    r.loop_count(-1)
    with pytest.raises(OSError):
        r.write_pulses([10] * 127, 1)  # 64 symbols + end marker > 64
    r.write_pulses([10] * 126, 1)  # 63 + 1 fits
    r.loop_count(0)
    r.loop_count(3)
    with pytest.raises(OSError):
        r.write_pulses([10, 10], 1)  # no loop counter on the original ESP32


def test_eight_channels_and_512_symbols(w):
    chans = [_rmt(pin=p, num_symbols=128) for p in (4, 5, 13, 14)]
    with pytest.raises(OSError):
        _rmt(pin=15)  # memory used up
    chans[0].deinit()
    _rmt(pin=15)
    with pytest.raises(OSError):
        chans[0].write_pulses([1, 1], 1)


def test_pin_taken_back_by_gpio_hides_the_rmt(w):
    import machine

    r = _rmt(pin=21, resolution_hz=80_000_000)
    r.loop_count(-1)
    r.write_pulses([100, 100], [1, 0])
    w.advance_to(w.now + 150)
    assert w.gpio.level(21) == 0
    w.advance_to(w.now + 60)  # 210: high again (period 200)
    assert w.gpio.level(21) == 1
    t = w.now
    machine.Pin(21, machine.Pin.OUT, value=0)
    assert w.gpio.edges[21][-1] == (t, 0)
    w.advance_to(w.now + 2000)
    assert w.gpio.edges[21][-1] == (t, 0)


def test_idle_looks_skipped_read_as_stepped(monkeypatch):
    """SKIP_IDLE_LOOKS: a look before anything is due returns at once. Random looping and
    one-shot transmissions on two pins, looked at (pin levels, wait_done) at the cycles around
    every half's start and each transmission's end, read the same with it on and off."""
    import random

    def play(skip):
        monkeypatch.setattr(sim_esp32, "SKIP_IDLE_LOOKS", skip)
        world, _board = install.board_world("esp32")
        rnd = random.Random(5)
        seen = []
        rmts = [_rmt(pin=p, resolution_hz=rnd.choice([80_000_000, 40_000_000, 10_000_000]),
                     idle_level=rnd.random() < 0.3) for p in (16, 17)]
        for _ in range(40):
            r = rnd.choice(rmts)
            r.loop(rnd.random() < 0.5)
            r.write_pulses([rnd.randint(1, 40) for _ in range(rnd.randint(1, 9))],
                           rnd.random() < 0.5)
            end = world.now + rnd.randint(50, 4000)
            while world.now < end:
                world.advance_to(world.now + rnd.choice([1, 1, 2, 3, 7, 20]))
                world.sync()
                seen.append((world.now, world.gpio.level(16), world.gpio.level(17),
                             [x._tx is None for x in rmts]))
            r.loop(False)  # a looping one plays its loop to the end
            r.wait_done(timeout=5)
        return seen, [list(world.gpio.edges[p]) for p in (16, 17)]

    fast = play(True)
    slow = play(False)
    assert len(fast[0]) > 10_000 and len(fast[1][0]) > 100
    assert fast == slow

"""The physical world around the simulated Pico (host_tools/sim/board_pico.py), observed through
the real lib/output_stage.py, as the firmware sees it.

Plain functions with assert, no pytest features: tests/portable/test_board_model_portable.py runs
the same functions on the MicroPython unix port.
"""
from tests.pulse_harness import Rig


class BoardRig(Rig):
    def __init__(self):
        Rig.__init__(self)
        from host_tools.sim import board_pico, install

        self.model = board_pico.PicoBoardModel(self.w, self.board)
        self.stage = install.load("output_stage").OutputStage(self.board, self.engine)

    def start(self, ma=20, rate_hz=50, channel=1):
        s = self.stage
        s.enable(True)
        s.set_amplitude_ma(channel, ma)
        s.configure_pulses(channel, 300, 50, rate_hz)
        s.start_pulses(channel)


def _close(a, b, tol=0.25):
    return abs(a - b) <= tol


def test_connected_electrode_reads_the_command():
    r = BoardRig()
    r.start(20)
    r.run_ms(100)
    got = r.stage.read_current_ma(1)
    assert _close(got, 20.0), got
    assert r.stage.read_current_ma(2) == 0.0  # channel 2 idle


def test_open_circuit_reads_zero():
    r = BoardRig()
    r.model.electrode(1, False)
    r.start(20)
    r.run_ms(100)
    assert r.stage.read_current_ma(1) == 0.0
    # reconnect: the next pulses read the command again
    r.model.electrode(1, True)
    r.run_ms(30)
    assert _close(r.stage.read_current_ma(1), 20.0)


def test_high_load_hits_compliance():
    r = BoardRig()
    r.model.load_ohm(1, 10_000)  # 80 V / 10 kOhm = 8 mA at most
    r.start(20)
    r.run_ms(100)
    got = r.stage.read_current_ma(1)
    assert _close(got, 8.0), got
    # a load the source can drive: the full command
    r.model.load_ohm(1, 2_000)  # 40 mA possible
    r.run_ms(40)
    assert _close(r.stage.read_current_ma(1), 20.0)


def test_over_current_fault_reads_high():
    r = BoardRig()
    r.model.over_current(1, True)
    r.start(20)
    r.run_ms(100)
    got = r.stage.read_current_ma(1)
    assert _close(got, 20.0 * 1.5 + 10, 0.4), got


def test_no_current_while_output_disabled():
    r = BoardRig()
    r.start(20)
    r.stage.enable(False)  # pulses still play on the legs, but the bridge/boost are off
    r.run_ms(100)
    assert r.stage.read_current_ma(1) == 0.0
    assert r.model.delivered_ma(1) == 0.0
    assert _close(r.model.command_ma(1), 20.0)


def test_peak_hold_decays_after_pulses_stop():
    r = BoardRig()
    r.start(20)
    r.run_ms(90)  # pulses at 0, 20, ..., 80 ms
    r.stage.stop_pulses(1)
    r.run_ms(8)
    assert _close(r.stage.read_current_ma(1), 20.0)  # 18 ms after the last pulse: still held
    r.run_ms(4)
    assert r.stage.read_current_ma(1) == 0.0  # 22 ms: no pulse in the last 20 ms


def test_amplitude_change_shows_within_one_hold():
    r = BoardRig()
    r.start(20)
    r.run_ms(60)
    r.stage.set_amplitude_ma(1, 10)
    r.run_ms(45)
    assert _close(r.stage.read_current_ma(1), 10.0)


def test_sense_read_is_cheap_with_a_long_history():
    # 2 s at 200 Hz: 800 pulses; a read scans only the last 20 ms of edges
    r = BoardRig()
    r.start(15, rate_hz=200)
    r.run_ms(2000)
    edges = r.w.gpio.edges[r.board.CHANNELS[1]["leg_a"]]
    assert len(edges) > 700
    assert _close(r.model.sense_ma(1), 15.0)
    # the same answer as a direct computation over the window
    assert _close(r.stage.read_current_ma(1), 15.0)


def test_battery_and_usb():
    r = BoardRig()
    assert abs(r.stage.battery_mv() - 3900) <= 3
    assert not r.stage.usb_present()
    r.model.battery(3300)
    assert abs(r.stage.battery_mv() - 3300) <= 3
    r.model.usb(True)
    assert r.stage.usb_present()
    r.model.usb(False)
    assert not r.stage.usb_present()


def test_button_press_bounces_then_settles():
    r = BoardRig()
    from host_tools.sim import machine

    pin_no = r.board.BUTTONS["ok"]
    pin = machine.Pin(pin_no, machine.Pin.IN, machine.Pin.PULL_UP)
    assert pin.value() == 1
    r.run_ms(1)
    edges = r.w.gpio.edges[pin_no]
    mark = len(edges)
    t0, t1 = r.model.press("ok", 100)
    ms2 = r.ms(2)
    r.run_ms(150)
    new = edges[mark:]
    press = [e for e in new if t0 <= e[0] < t0 + ms2]
    release = [e for e in new if t1 <= e[0] < t1 + ms2]
    assert len(press) in (3, 5), press
    assert len(release) in (3, 5), release
    assert len(press) + len(release) == len(new)  # nothing outside the bounce windows
    assert press[-1][1] == 0 and release[-1][1] == 1
    # clean levels: low from 2 ms after the touch to the release, high 2 ms after the release
    for c in range(t0 + ms2, t1, r.ms(1)):
        assert r.w.gpio.level_at(pin_no, c) == 0
    assert r.w.gpio.level_at(pin_no, t1 + ms2) == 1
    assert pin.value() == 1


def test_bounce_is_deterministic():
    seqs = []
    for _ in range(2):
        r = BoardRig()
        pin_no = r.board.BUTTONS["up"]
        from host_tools.sim import machine

        machine.Pin(pin_no, machine.Pin.IN, machine.Pin.PULL_UP)
        r.model.press("up", 50)
        r.run_ms(60)
        seqs.append(list(r.w.gpio.edges[pin_no]))
    assert seqs[0] == seqs[1]


def test_trigger_foot_switch_active_low():
    r = BoardRig()
    from host_tools.sim import machine

    pin = machine.Pin(r.board.TRIGGER, machine.Pin.IN, machine.Pin.PULL_UP)
    assert pin.value() == 1
    r.model.trigger(True)
    assert pin.value() == 0
    r.model.trigger(False)
    assert pin.value() == 1


def test_snapshot_and_oled():
    r = BoardRig()
    r.start(20)
    r.model.load_ohm(2, 800)
    snap = r.model.snapshot()
    c1 = snap["channels"][1]
    assert _close(c1["delivered_ma"], 20.0) and c1["connected"] and c1["load_ohm"] == 1000
    assert snap["channels"][2]["load_ohm"] == 800
    assert snap["battery_mv"] == 3900 and snap["usb"] is False
    if r.model.oled is not None:
        assert r.w.i2c_devices[r.board.OLED_ADDR] is r.model.oled


def test_sense_short_path_reads_as_the_general_path():
    # The steady-window short path of sense_ma and the general path (every segment with every
    # duty and load state in force during it) must give the same reading: random amplitude,
    # enable, load, electrode and fault changes and pulse starts/stops on two channels, read every
    # 1-3 ms at now and at a random recent cycle.
    from host_tools.sim.board_pico import Lcg

    r = BoardRig()
    rng = Lcg(7)
    r.stage.enable(True)
    for n, ma, hz in ((1, 20, 100), (2, 12, 170)):  # long phases: reads often fall inside one
        r.stage.set_amplitude_ma(n, ma)
        r.stage.configure_pulses(n, 1000, 50, hz)
        r.stage.start_pulses(n)
    m = r.model
    hold = r.w.cycles(m.hold_ms * 1_000_000)
    general = m._sense_general
    calls = [0]

    def counted(n, c, t0):  # the general path taken by sense_ma itself
        calls[0] += 1
        return general(n, c, t0)

    m._sense_general = counted
    running = {1: True, 2: True}
    reads = 0
    values = {}
    for _step in range(600):
        k = rng.next(30)
        ch = 1 + rng.next(2)
        if rng.next(2):  # make the change inside a pulse phase of that channel
            legs = (r.board.CHANNELS[ch]["leg_a"], r.board.CHANNELS[ch]["leg_b"])
            for _i in range(300):
                if r.w.gpio.levels[legs[0]] or r.w.gpio.levels[legs[1]]:
                    break
                r.run_cycles(r.ms(0.05))
        if k == 0:
            r.stage.set_amplitude_ma(ch, 1 + rng.next(40))
        elif k == 1:
            r.stage.enable(rng.next(3) != 0)
        elif k == 2:
            m.electrode(ch, rng.next(3) != 0)
        elif k == 3:
            m.load_ohm(ch, 500 + 1000 * rng.next(15))
        elif k == 4:
            m.over_current(ch, rng.next(4) == 0)
        elif k == 5:
            if running[ch]:
                r.stage.stop_pulses(ch)
            else:
                r.stage.start_pulses(ch)
            running[ch] = not running[ch]
        r.run_cycles(1 + rng.next(r.ms(3)))
        now = r.w.now
        cs = [now, now - rng.next(hold + hold // 2)]
        # and reads whose window starts just before, at and just after the last change of the
        # enable, a leg, the DAC duty and the load state (the short path's boundaries)
        g = r.w.gpio.edges
        ch_cfg = r.board.CHANNELS[ch]
        for rec in (g[r.board.OUTPUT_ENABLE], g[ch_cfg["leg_a"]], g[ch_cfg["leg_b"]],
                    r.w.pwm_log.get(ch_cfg["dac"], [(0, 0)]), m.channels[ch].history):
            for d in (-1, 0, 1):
                if 0 < rec[-1][0] + hold + d <= now:
                    cs.append(rec[-1][0] + hold + d)
        for c in cs:
            for n in (1, 2):
                t0 = c - hold if c > hold else 0
                got = m.sense_ma(n, c)
                want = general(n, c, t0)
                assert got == want, (n, c, got, want)
                reads += 1
                values[got] = values.get(got, 0) + 1
    short = reads - calls[0]
    assert short > 200 and calls[0] > 200, (short, calls[0])  # both paths taken often
    assert values.get(0.0, 0) > 50 and len(values) > 5, values

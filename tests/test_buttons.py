"""Buttons on the simulated pin layer: board pins with pull-ups, external drive, STOP IRQ."""
import board_config
from host_tools.sim import install, world


def _load():
    w = world.new_world()
    B = install.load("buttons")
    install.restore_time()
    return w, B


def test_from_board_on_sim_pins_and_stop_irq():
    w, B = _load()
    board = board_config.load("pico")
    b = B.Buttons.from_board(board)
    assert not b.pressed("stop")
    calls = []

    class Sup:
        def emergency_off(self):
            calls.append(w.now)

    from host_tools.sim import machine
    stop_pin = machine.Pin(board.BUTTONS["stop"], machine.Pin.IN, machine.Pin.PULL_UP)
    b.attach_stop_irq(stop_pin, Sup().emergency_off)
    w.gpio.drive_external(board.BUTTONS["stop"], 0)
    assert len(calls) == 1 and b.stop_irq_count == 1  # at the edge, before any poll
    for t in range(0, 60, 10):
        b.poll(t)
    assert b.pressed("stop")
    assert b.get() == B.event(B.STOP, B.K_DOWN)
    w.gpio.drive_external(board.BUTTONS["stop"], 1)
    assert len(calls) == 1  # rising edge: nothing


def test_ok_press_on_sim_pins():
    w, B = _load()
    board = board_config.load("pico")
    b = B.Buttons.from_board(board)
    ok = board.BUTTONS["ok"]
    t = 0
    w.gpio.drive_external(ok, 0)
    for t in range(0, 100, 10):
        b.poll(t)
    w.gpio.drive_external(ok, 1)
    for t in range(100, 200, 10):
        b.poll(t)
    evs = []
    while True:
        e = b.get()
        if not e:
            break
        evs.append(B.describe(e))
    assert evs == ["ok.down", "ok.press", "ok.release"]

"""lib/output_stage.py: the integer readings the supervisor uses every tick (no float allocated
on MicroPython) give exactly the results of the float ones."""
import random

from tests.test_board_model import BoardRig


class _Adc:
    def __init__(self):
        self.v = 0

    def read_u16(self):
        return self.v


def test_current_raw_threshold_matches_the_ma_reading():
    st = BoardRig().stage
    k = st.board.SENSE_MA_PER_VOLT
    rng = random.Random(7)
    values = [0.0, 1.0, 3.5, 5.0, 7.0, 16.0, 115.0, 131.9, 1e6, -1.0]
    values += [rng.uniform(0, 140) for _ in range(200)]
    values += [st._volts_of(rng.randrange(65536)) * k for _ in range(200)]  # exact readings
    for ma in values:
        for strict in (True, False):
            thr = st.current_raw_threshold(ma, strict)
            for r in {0, 65535, thr - 2, thr - 1, thr, thr + 1}:
                if 0 <= r <= 65535:
                    v = st._volts_of(r) * k
                    assert (r >= thr) == (v > ma if strict else v >= ma), (ma, strict, r, thr)


def test_read_current_raw_is_the_reading_of_read_current_ma():
    r = BoardRig()
    r.start(20)
    r.run_ms(100)
    st = r.stage
    assert st._volts_of(st.read_current_raw(1)) * st.board.SENSE_MA_PER_VOLT == \
        st.read_current_ma(1)


def test_battery_mv_integer_equals_the_float_formula_for_every_reading():
    st = BoardRig().stage
    adc = _Adc()
    st._vsys = adc
    div = st.board.VSYS_DIVIDER
    for raw in range(65536):
        adc.v = raw
        mv = st.battery_mv()
        assert type(mv) is int
        assert mv == int(raw * 3.3 / 65535 * div * 1000), raw

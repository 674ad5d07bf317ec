# Raspberry Pi Pico reference board: pin map, clocks, calibration and hardware limits.
# docs/hardware.md describes the circuit these numbers belong to.
from micropython import const

NAME = "pico"
CHIP = "rp2040"
SYS_HZ = const(125_000_000)  # system clock; one PIO cycle = 8 ns, the pulse timing quantum

# --- Stimulation channels ----------------------------------------------------------------
# Each channel: two adjacent GPIOs for the H-bridge legs (A = pin, B = pin + 1), driven by
# side-set of one PIO state machine, and a burst gate GPIO (internal signal, leave it
# unconnected; a scope probe on it shows the burst envelope).
# Channel 1 lives in PIO0, channel 2 in PIO1 (each block: pulse program + gate program = 32 words).
CHANNELS = {
    1: {"leg_a": 2, "leg_b": 3, "gate": 4, "pio": 0, "sm_pulse": 0, "sm_gate": 1,
        "dac": 14, "sense_adc": 26},
    2: {"leg_a": 6, "leg_b": 7, "gate": 8, "pio": 1, "sm_pulse": 4, "sm_gate": 5,
        "dac": 15, "sense_adc": 27},
}

OUTPUT_ENABLE = const(9)  # high: boost converter on and H-bridge drivers enabled
OUTPUT_LED = const(22)  # lit whenever output is enabled (SAFETY rule 12)
BUZZER = const(13)

# --- User interface ------------------------------------------------------------------------
BUTTONS = {"up": 16, "down": 17, "ok": 18, "back": 19, "stop": 20}  # active low, pull-ups
STOP_IRQ_HARD = True  # rp2 pin IRQs can be hard: STOP cuts the output even inside a flash write
TRIGGER = const(21)  # foot switch for triggered FES, active low, pull-up
I2C_ID = const(0)
I2C_SDA = const(0)
I2C_SCL = const(1)
I2C_HZ = const(400_000)
OLED_ADDR = const(0x3C)
OLED_WIDTH = const(128)
OLED_HEIGHT = const(64)

# --- Power ------------------------------------------------------------------------------------
VBUS_SENSE = const(24)  # Pico: high while USB power is present
VSYS_ADC = const(29)  # Pico: VSYS / 3 on ADC3
VSYS_DIVIDER = 3
BATTERY_WARN_MV = const(3500)  # warn (single Li-ion cell)
BATTERY_CUTOFF_MV = const(3300)  # refuse / stop stimulation below this

# --- Output stage -----------------------------------------------------------------------------
# Amplitude DAC: PWM into a 2nd-order RC filter, whose voltage sets a V-to-I current source:
#   I_out[mA] = DAC_MA_PER_VOLT * V_dac, V_dac = 3.3 V * duty / 65535.
# 3.3 V full scale -> 110 mA; the supervisor never asks more than MAX_MA.
# TOP = 4999: 0.022 mA per duty step; a 2nd-order RC at 1 kHz takes the ripple down by 56 dB
DAC_PWM_HZ = const(25_000)
DAC_STEPS = const(5000)  # PWM levels per period: 125 MHz / 25 kHz (TOP + 1); the DAC rounds down
DAC_VREF_V = 3.3
DAC_MA_PER_VOLT = 33.333  # calibration; measure on your board and edit
DAC_OFFSET_MA = 0.0

# Current sense: sense resistor + amplifier + peak detector (hold ~20 ms), so the ADC reads the
# peak current of the latest pulses: I[mA] = V_adc * SENSE_MA_PER_VOLT.
SENSE_MA_PER_VOLT = 40.0  # 3.3 V -> 132 mA

MAX_MA = const(100)  # board maximum peak current per channel (docs/safety.md)
COMPLIANCE_V = const(80)  # boost converter output: the highest voltage the source can use
DEAD_TIME_NS = const(1000)  # minimum inter-phase gap the H-bridge needs (both legs off)

PULSE_ENGINE = "pulse_pio"  # lib module with channel(n, board)

# --- EMG input (lib/emg.py; docs/hardware.md "EMG front end") -------------------------------------
# Instrumentation amplifier (gain 10) + 20-500 Hz band-pass (gain 50): 500 in all, output biased at
# 1.65 V into GP28 / ADC2: 3.3 V / 4096 / 500 = 1.611 uV at the electrodes per 12-bit count,
# +-3.3 mV full scale. Calibrate: a 1 mV 100 Hz sine into the electrode leads should read an
# envelope of 637 uV (the average rectified value of a 1 mV-peak sine); edit to match.
EMG_ADC = const(28)
EMG_RATE_HZ = const(1000)
EMG_TIMER = const(-1)  # rp2 virtual timer (alarm pool); hard IRQ: ADC reads are register reads
EMG_IRQ_HARD = True
EMG_UV_PER_COUNT_X1000 = const(1611)
EMG_RAIL_LOW = const(32)  # counts: the amplifier output within ~25 mV of a rail = saturated
EMG_RAIL_HIGH = const(4063)
EMG_FLAT_COUNTS = const(2)  # two windows spanning <= 2 counts: flat line (input off)
EMG_BLANK_PRE_US = const(100)  # samples blanked from 100 us before a pulse
EMG_BLANK_POST_US = const(1500)  # to 1.5 ms after its end (front end recovers within 1 ms)

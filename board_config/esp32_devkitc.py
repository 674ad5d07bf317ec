# ESP32 DevKitC (ESP32-WROOM-32 / -32E) reference board: pin map, clocks, calibration and
# hardware limits. docs/hardware.md ("ESP32 DevKitC") describes the circuit these numbers belong to.
#
# Pins avoided: 6-11 (SPI flash), 0 / 2 / 12 (strapping pins that decide the boot mode and the flash
# voltage), 1 / 3 (UART0: REPL), 37 / 38 (not broken out), ADC2 pins for analog (ADC2 is unusable
# while WiFi runs). Analog inputs are ADC1 only: GPIO 34, 35, 36 (VP), 39 (VN); 34-39 are input-only
# and have no internal pull resistors.
from micropython import const

NAME = "esp32_devkitc"
CHIP = "esp32"
SYS_HZ = const(240_000_000)  # CPU clock boot sets (machine.freq())
RMT_SOURCE_HZ = const(80_000_000)  # APB clock feeding the RMT: 12.5 ns, the finest pulse quantum
SIM_HZ = const(80_000_000)  # the simulation counts time in RMT source cycles (host_tools/sim)
GPIO_COUNT = const(40)

# --- Stimulation channels ----------------------------------------------------------------
# Each leg of each H-bridge is one RMT TX channel (lib/pulse_rmt.py); leg A and leg B need not be
# adjacent. "timer": the hardware timer the engine uses to time updates at loop boundaries.
# "dac": LEDC PWM into the same RC filter as the Pico board; "sense_adc": ADC1 pins.
CHANNELS = {
    1: {"leg_a": 16, "leg_b": 17, "timer": 0, "dac": 25, "sense_adc": 34},
    2: {"leg_a": 18, "leg_b": 19, "timer": 1, "dac": 26, "sense_adc": 35},
}

OUTPUT_ENABLE = const(23)  # high: boost converter on and H-bridge drivers enabled (pull-down!)
OUTPUT_LED = const(4)  # lit whenever output is enabled (SAFETY rule 12)
BUZZER = const(13)

# --- User interface ------------------------------------------------------------------------
# Active low with the internal pull-ups. 14 and 15 are usable inputs: 14 only toggles during boot
# as an output (not as an input), 15 (strapping, pulled up) pressed at power-on only silences the
# boot log. STOP has a clean pin.
# UP is on GPIO 2 (strapping: only read in download mode, with GPIO 0 low; internal pull-up only,
# no external one, or serial flashing fails) so that GPIO 32 (ADC1_4), the last ADC1 pin, is the EMG
# input.
BUTTONS = {"up": 2, "down": 33, "ok": 14, "back": 15, "stop": 27}
# The esp32 port's pin IRQs are always scheduled (soft): the STOP handler runs at the next bytecode
# boundary (after a blocking call such as a flash erase); the loop also reads the STOP level every
# tick and start() re-checks it after enabling the output.
STOP_IRQ_HARD = False
TRIGGER = const(5)  # foot switch, active low (strapping pin with a pull-up: open at power-on)
I2C_ID = const(0)
I2C_SDA = const(21)
I2C_SCL = const(22)
I2C_HZ = const(400_000)
OLED_ADDR = const(0x3C)
OLED_WIDTH = const(128)
OLED_HEIGHT = const(64)

# --- Power ------------------------------------------------------------------------------------
# The DevKitC has no VBUS pin to the ESP32: a 100k/100k divider from the USB 5 V rail into GPIO 39
# (input-only, ADC1_3) reads high (2.5 V) while USB power is present.
VBUS_SENSE = const(39)
VSYS_ADC = const(36)  # battery through a 100k/100k divider (4.2 V -> 2.1 V) on ADC1_0 (VP)
VSYS_DIVIDER = 2
BATTERY_WARN_MV = const(3500)
BATTERY_CUTOFF_MV = const(3300)

# --- ADC ----------------------------------------------------------------------------------------
# 11 dB attenuation (machine.ADC.ATTN_11DB) on every analog input: the usable, calibrated range is
# about 0.15-2.45 V (ESP-IDF), non-linear above. Read with ADC.read_uv(): it applies the eFuse
# calibration (Vref / two-point) burnt into each chip; read_u16() is uncalibrated (+-6 % between
# chips). Keep every analog signal inside 0.15-2.45 V: sense full scale 2.2 V, battery 2.1 V.
ADC_ATTEN = const(3)  # machine.ADC.ATTN_11DB
ADC_MIN_V = 0.15
ADC_MAX_V = 2.45

# --- Output stage -----------------------------------------------------------------------------
# Amplitude DAC: LEDC PWM at 39 kHz has 11 bits (80 MHz / 39 kHz = 2051 counts; 100 kHz would
# leave 9 bits), into a 2nd-order RC filter (corner <= 1 kHz), into the V-to-I current source:
#   I_out[mA] = DAC_MA_PER_VOLT * V_dac, V_dac = 3.3 V * duty / 65535.
# (GPIO 25/26 are also the ESP32's 8-bit DAC pins; the PWM path keeps the Pico's circuit.)
DAC_PWM_HZ = const(39_000)
DAC_STEPS = const(2048)  # LEDC levels: 2**11 at 39 kHz (80 MHz / 39 kHz = 2051); rounds down
DAC_VREF_V = 3.3
DAC_MA_PER_VOLT = 33.333  # calibration; measure on your board and edit
DAC_OFFSET_MA = 0.0

# Current sense: sense resistor + amplifier + peak detector, scaled so 110 mA is 2.2 V (inside the
# calibrated 11 dB range): I[mA] = V_adc * SENSE_MA_PER_VOLT.
SENSE_MA_PER_VOLT = 50.0

MAX_MA = const(100)
COMPLIANCE_V = const(80)
DEAD_TIME_NS = const(1000)  # minimum both-legs-off time the H-bridge needs

# --- Pulse engine (lib/pulse_rmt.py) -------------------------------------------------------------
# The two legs are two RMT channels started by two write_pulses() calls: leg B starts
# RMT_START_SKEW_NS after leg A. The engine shifts leg B's pattern by that much (in whole ticks), so
# the residual skew is the calibration error plus the call's jitter. Calibrate it with a scope (the
# time from leg A's first rising edge to leg B's minus phase + gap) and edit. Every inter-phase gap
# is at least DEAD_TIME_NS + RMT_SKEW_TOLERANCE_NS, so a residual skew within the tolerance never
# eats into the dead time.
RMT_START_SKEW_NS = const(40_000)
RMT_SKEW_TOLERANCE_NS = const(1000)
RMT_SYMBOLS = const(128)  # per leg: 2 memory blocks of 64; 4 legs use all 512 symbols

PULSE_ENGINE = "pulse_rmt"

# --- EMG input (lib/emg.py; docs/hardware.md "EMG front end") -------------------------------------
# Same front end as the Pico board (gain 500, 20-500 Hz, bias 1.65 V), then a 3:4 divider so the
# amplifier's 0-3.3 V swing lands in 0-2.48 V (bias 1.24 V) for the 11 dB ADC range, into GPIO 32
# (ADC1_4). read_u16() is uncalibrated (+-6 % between chips): 3.55 V / 4096 / 375 = 2.311 uV per
# 12-bit count nominal; calibrate with a 1 mV 100 Hz sine (envelope 637 uV) and edit.
EMG_ADC = const(32)
EMG_RATE_HZ = const(1000)
EMG_TIMER = const(2)  # timers 0 and 1 belong to the pulse engine (CHANNELS[n]["timer"])
EMG_IRQ_HARD = False  # ESP-IDF's adc_oneshot_read takes a lock: not callable from a hard IRQ
EMG_UV_PER_COUNT_X1000 = const(2311)
EMG_RAIL_LOW = const(60)  # counts: the amplifier at its low rail (0 V)
EMG_RAIL_HIGH = const(2800)  # its high rail: 3.3 V x 3/4 = 2.48 V = 2861 counts
EMG_FLAT_COUNTS = const(2)
EMG_BLANK_PRE_US = const(100)
EMG_BLANK_POST_US = const(1500)

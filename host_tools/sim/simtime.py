# The `time` stand-in: MicroPython's time module on the virtual clock of world.current().
# ticks_* wrap like MicroPython (TICKS_PERIOD = 2**30); sleep_* advance the clock, firing the
# callbacks that fall inside the sleep. time()/localtime() count from world.epoch_s (UTC, no zones).
#
# Common subset of CPython 3.11 and MicroPython 1.29.

from host_tools.sim import world as _world

TICKS_PERIOD = 1 << 30
TICKS_MAX = TICKS_PERIOD - 1
TICKS_HALFPERIOD = TICKS_PERIOD // 2


def _w():
    return _world.current()


def ticks_ms():
    return _w().ms() & TICKS_MAX


def ticks_us():
    return _w().us() & TICKS_MAX


def ticks_cpu():
    return _w().now & TICKS_MAX


def ticks_add(ticks, delta):
    return (ticks + delta) & TICKS_MAX


def ticks_diff(ticks1, ticks2):
    return ((ticks1 - ticks2 + TICKS_HALFPERIOD) & TICKS_MAX) - TICKS_HALFPERIOD


def sleep_ns(ns):
    if ns > 0:
        _w().advance_ns(int(ns))
    else:
        _w().run_due()


def sleep_us(us):
    sleep_ns(int(us) * 1000)


def sleep_ms(ms):
    sleep_ns(int(ms) * 1_000_000)


def sleep(seconds):
    # float seconds allowed, as in MicroPython
    if isinstance(seconds, float):
        sleep_ns(int(seconds * 1_000_000_000 + 0.5))
    else:
        sleep_ns(seconds * 1_000_000_000)


def time_ns():
    w = _w()
    return w.epoch_s * 1_000_000_000 + w.ns()


def time():
    w = _w()
    return w.epoch_s + w.ns() // 1_000_000_000


# ---- calendar (proleptic Gregorian, UTC) ---------------------------------------------------

def _is_leap(y):
    return y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)


_DAYS_BEFORE = (0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334)


def _days_from_civil(y, m, d):
    # days since 1970-01-01 (Howard Hinnant's algorithm)
    y -= m <= 2
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _civil_from_days(z):
    z += 719468
    era = (z if z >= 0 else z - 146096) // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    y = yoe + era * 400
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + (3 if mp < 10 else -9)
    return (y + (m <= 2), m, d)


def gmtime(secs=None):
    """(year, month, mday, hour, minute, second, weekday 0=Monday, yearday 1..366)"""
    if secs is None:
        secs = time()
    secs = int(secs)
    days = secs // 86400
    rem = secs - days * 86400
    y, m, d = _civil_from_days(days)
    wd = (days + 3) % 7  # 1970-01-01 was a Thursday
    yd = _DAYS_BEFORE[m - 1] + d + (1 if m > 2 and _is_leap(y) else 0)
    return (y, m, d, rem // 3600, (rem // 60) % 60, rem % 60, wd, yd)


def localtime(secs=None):
    return gmtime(secs)


def mktime(t):
    y, m, d, hh, mm, ss = t[0], t[1], t[2], t[3], t[4], t[5]
    # normalise month overflow like MicroPython's timeutils
    y += (m - 1) // 12
    m = (m - 1) % 12 + 1
    return _days_from_civil(y, m, 1) * 86400 + (d - 1) * 86400 + hh * 3600 + mm * 60 + ss

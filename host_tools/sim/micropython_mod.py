# The `micropython` stand-in. const/native/viper are identities; schedule() queues the call on
# the world clock at now (it runs at the next advance: a sleep, an I2C transfer, run_due()).
#
# Common subset of CPython 3.11 and MicroPython 1.29.

from host_tools.sim import world as _world


def const(x):
    return x


def native(f):
    return f


def viper(f):
    return f


def asm_thumb(f):
    def _not_modelled(*args):
        raise NotImplementedError("@micropython.asm_thumb is not modelled: " + str(f))

    return _not_modelled


_opt = 0


def opt_level(level=None):
    global _opt
    if level is None:
        return _opt
    _opt = level


def mem_info(verbose=None):
    print("mem: simulated (no heap figures)")


def qstr_info(verbose=None):
    print("qstr: simulated")


def stack_use():
    return 0


def alloc_emergency_exception_buf(size):
    pass


def heap_lock():
    return 0


def heap_unlock():
    return 0


def heap_locked():
    return 0


def kbd_intr(chr):
    pass


class _ScheduleQueueFull(RuntimeError):
    pass


def schedule(fn, arg):
    w = _world.current()
    w.schedule(w.now, lambda: fn(arg))

"""Value Change Dump writer: one 1-bit wire per GPIO, readable by PulseView and GTKWave."""
import io


def _ident(i):
    # printable VCD identifiers: !, ", #, ...
    chars = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 94)
        chars = chr(33 + r) + chars
    return chars


class VcdWriter:
    """Writes a VCD as the record arrives (long sessions: nothing is kept in memory).
    begin(initial levels) once, then add(events) with [(cycle, wire index, level)] sorted and
    later than every event before, then end(end_cycle). sys_hz None: set before begin() (the
    scenario Recorder sets it from the first world)."""

    def __init__(self, path, names, sys_hz=None, module="nmes"):
        self.path = path
        self.names = names
        self.sys_hz = sys_hz
        self.module = module
        self.ids = [_ident(i) for i in range(len(names))]
        # the value-change line of each wire for level 0 and 1
        self._lines = [("0%s\n" % i, "1%s\n" % i) for i in self.ids]
        self.f = None
        self.last = None

    def ns(self, c):
        return (c * 1_000_000_000 + self.sys_hz // 2) // self.sys_hz

    def begin(self, levels):
        # io.open: during a scenario run the builtin open() is the simulated flash's
        f = self.f = io.open(self.path, "w")
        f.write("$comment NMES stimulator simulation, system clock %d Hz $end\n" % self.sys_hz)
        f.write("$timescale 1 ns $end\n$scope module %s $end\n" % self.module)
        for k, name in enumerate(self.names):
            f.write("$var wire 1 %s %s $end\n" % (self.ids[k], name))
        f.write("$upscope $end\n$enddefinitions $end\n#0\n$dumpvars\n")
        for k in range(len(self.names)):
            f.write("%d%s\n" % (levels[k], self.ids[k]))
        f.write("$end\n")

    def add(self, events):
        last = self.last
        hz = self.sys_hz
        half = hz // 2
        lines = self._lines
        out = []
        append = out.append
        for cycle, k, level in events:
            t = (cycle * 1_000_000_000 + half) // hz  # ns(cycle)
            if t != last:
                append("#%d\n" % t)
                last = t
            append(lines[k][level])
        self.f.write("".join(out))
        self.last = last

    def end(self, end_cycle=None):
        if end_cycle is not None and (self.last is None or self.ns(end_cycle) > self.last):
            self.f.write("#%d\n" % self.ns(end_cycle))
        self.f.close()


def write_vcd(path, wires, sys_hz, end_cycle=None, module="nmes"):
    """wires: list of (name, edges) with edges [(cycle, level), ...] (first = initial level).
    Times are written in ns (exact at 125 MHz: 8 ns per cycle)."""
    events = []
    for k, (_name, edges) in enumerate(wires):
        for cycle, level in edges[1:]:
            events.append((cycle, k, level))
    events.sort()
    w = VcdWriter(path, [name for name, _e in wires], sys_hz, module)
    w.begin([edges[0][1] if edges else 0 for _name, edges in wires])
    w.add(events)
    w.end(end_cycle)


def read_vcd(path):
    """Minimal reader (for tests): {name: [(time_ns, level), ...]} with the initial level first."""
    names = {}
    out = {}
    t = 0
    in_defs = True
    with open(path) as f:
        for line in f:
            line = line.strip()
            if in_defs:
                if line.startswith("$var"):
                    parts = line.split()
                    names[parts[3]] = parts[4]
                    out[parts[4]] = []
                elif line.startswith("$enddefinitions"):
                    in_defs = False
                continue
            if not line or line.startswith("$"):
                continue
            if line[0] == "#":
                t = int(line[1:])
            elif line[0] in "01":
                out[names[line[1:]]].append((t, int(line[0])))
    return out

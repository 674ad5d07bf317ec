"""Value Change Dump writer: one 1-bit wire per GPIO, readable by PulseView and GTKWave."""


def _ident(i):
    # printable VCD identifiers: !, ", #, ...
    chars = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 94)
        chars = chr(33 + r) + chars
    return chars


def write_vcd(path, wires, sys_hz, end_cycle=None, module="nmes"):
    """wires: list of (name, edges) with edges [(cycle, level), ...] (first = initial level).
    Times are written in ns (exact at 125 MHz: 8 ns per cycle)."""
    ids = [_ident(i) for i in range(len(wires))]
    events = []
    for k, (_name, edges) in enumerate(wires):
        for cycle, level in edges[1:]:
            events.append((cycle, k, level))
    events.sort()

    def ns(c):
        return (c * 1_000_000_000 + sys_hz // 2) // sys_hz

    with open(path, "w") as f:
        f.write("$comment NMES stimulator simulation, system clock %d Hz $end\n" % sys_hz)
        f.write("$timescale 1 ns $end\n$scope module %s $end\n" % module)
        for k, (name, _edges) in enumerate(wires):
            f.write("$var wire 1 %s %s $end\n" % (ids[k], name))
        f.write("$upscope $end\n$enddefinitions $end\n#0\n$dumpvars\n")
        for k, (_name, edges) in enumerate(wires):
            f.write("%d%s\n" % (edges[0][1] if edges else 0, ids[k]))
        f.write("$end\n")
        last = None
        for cycle, k, level in events:
            t = ns(cycle)
            if t != last:
                f.write("#%d\n" % t)
                last = t
            f.write("%d%s\n" % (level, ids[k]))
        if end_cycle is not None and (last is None or ns(end_cycle) > last):
            f.write("#%d\n" % ns(end_cycle))


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

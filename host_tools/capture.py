"""Waveform capture: run the real lib/ pulse engine in the simulation and record its pins.

    python -m host_tools.capture --phase-us 300 --gap-us 50 --rate-hz 50 --ms 200 --out DIR
    python -m host_tools.capture --rate-hz 100 --burst-count 10 --burst-rate-hz 2 --ms 1000 ...
    python -m host_tools.capture --channel both --alternate ...
    python -m host_tools.capture --board esp32 ...     # the ESP32 RMT engine (12.5 ns cycles)

Writes DIR/pins.vcd (wires ch1_a, ch1_b, ch2_a, ch2_b, enable), DIR/pulses.png and prints a JSON
summary of the measured phase widths, gaps and periods in ns and the pulse count.
"""
import argparse
import json
import os
import sys

from host_tools import pulse_analysis
from host_tools.vcd import write_vcd

WIRE_NAMES = ("ch1_a", "ch1_b", "ch2_a", "ch2_b", "enable")


def run_capture(phase_us=300, gap_us=50, rate_hz=50, ms=200, channels=(1,), burst_count=1,
                burst_rate_hz=None, alternate=False, board_name="pico", amplitude_ma=0):
    """Simulate and return (world, board, plans). Raises PulseParamError on a bad request."""
    from host_tools.sim import install

    # the world follows the board: Pico 125 MHz cycles, ESP32 80 MHz RMT source cycles
    w, board = install.board_world(board_name)
    output_stage = install.load("output_stage")
    # the engine imported with the stand-ins in place (its `time` must be the virtual one)
    engine = install.load(board.PULSE_ENGINE)
    stage = output_stage.OutputStage(board, engine)
    plans = {}
    for ch in channels:
        plans[ch] = stage.configure_pulses(ch, phase_us, gap_us, rate_hz, burst_count,
                                           burst_rate_hz, alternate)
    stage.enable(True)
    for ch in channels:
        if amplitude_ma:
            stage.set_amplitude_ma(ch, amplitude_ma)
        stage.start_pulses(ch)
    w.advance_to(w.now + ms * (w.sys_hz // 1000))
    for ch in channels:
        stage.stop_pulses(ch)
    stage.zero_all()
    stage.enable(False)
    w.sync()
    return w, board, plans


def wires(w, board):
    out = []
    for n in (1, 2):
        c = board.CHANNELS[n]
        out.append(("ch%d_a" % n, w.gpio.edges[c["leg_a"]]))
        out.append(("ch%d_b" % n, w.gpio.edges[c["leg_b"]]))
    out.append(("enable", w.gpio.edges[board.OUTPUT_ENABLE]))
    return out


def measure(w, board, channel):
    c = board.CHANNELS[channel]
    pulses, violations = pulse_analysis.analyse(w.gpio.edges[c["leg_a"]],
                                                w.gpio.edges[c["leg_b"]])
    return pulses, violations


def plot(path, w, board, channels, plans):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ns_per_cycle = 1e9 / w.sys_hz
    fig, axes = plt.subplots(len(channels), 2, figsize=(12, 2.8 * len(channels)), squeeze=False,
                             gridspec_kw={"width_ratios": [2, 1]})
    end = w.now
    for row, ch in enumerate(channels):
        c = board.CHANNELS[ch]
        ea, eb = w.gpio.edges[c["leg_a"]], w.gpio.edges[c["leg_b"]]
        pulses, _ = pulse_analysis.analyse(ea, eb)

        def trace(edges):
            xs, ys = [], []
            level = edges[0][1]
            xs.append(0)
            ys.append(level)
            for cyc, lv in edges[1:]:
                xs += [cyc, cyc]
                ys += [level, lv]
                level = lv
            xs.append(end)
            ys.append(level)
            return xs, ys

        # bipolar view: current direction through the load = A - B
        xa, ya = trace(ea)
        xb, yb = trace(eb)
        for col, (t0, t1, unit, scale) in enumerate(
                [(0, end, "ms", ns_per_cycle / 1e6),
                 (pulses[0].start - pulses[0].phase1 // 2 if pulses else 0,
                  (pulses[0].end + pulses[0].phase1 // 2) if pulses else end, "us",
                  ns_per_cycle / 1e3)]):
            ax = axes[row][col]
            ax.plot([x * scale for x in xa], ya, drawstyle="default", color="tab:red",
                    label="leg A (+)")
            ax.plot([x * scale for x in xb], [-v for v in yb], color="tab:blue",
                    label="leg B (-)")
            ax.set_xlim(t0 * scale, t1 * scale)
            ax.set_ylim(-1.3, 1.3)
            ax.set_yticks([-1, 0, 1])
            ax.set_yticklabels(["B", "off", "A"])
            ax.set_xlabel(unit)
            ax.grid(alpha=0.3)
            if col == 0:
                p = plans[ch]
                ax.set_title("channel %d: %d pulses, phase %.3f us, gap %.3f us, period %.3f ms%s"
                             % (ch, len(pulses), p.phase_ns / 1e3, p.gap_ns / 1e3,
                                p.period_ns / 1e6,
                                (", bursts %d/%d" % (p.burst_count, p.burst_slots))
                                if p.burst_count > 1 else ""), fontsize=9)
                ax.legend(loc="upper right", fontsize=7)
            else:
                ax.set_title("first pulse (zoom)", fontsize=9)
                if pulses:
                    p0 = pulses[0]
                    for a_, b_, txt in ((p0.start, p0.start + p0.phase1, "%.2f us" % (
                            p0.phase1 * ns_per_cycle / 1e3)),
                            (p0.start + p0.phase1, p0.start + p0.phase1 + p0.gap,
                             "gap %.2f us" % (p0.gap * ns_per_cycle / 1e3))):
                        ax.annotate(txt, ((a_ + b_) / 2 * scale, 1.12), ha="center",
                                    fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--phase-us", type=float, default=300)
    ap.add_argument("--gap-us", type=float, default=50)
    ap.add_argument("--rate-hz", type=float, default=50)
    ap.add_argument("--burst-count", type=int, default=1)
    ap.add_argument("--burst-rate-hz", type=float, default=None)
    ap.add_argument("--alternate", action="store_true", help="alternate polarity pulse to pulse")
    ap.add_argument("--channel", default="1", choices=["1", "2", "both"])
    ap.add_argument("--ms", type=float, default=200, help="device time to simulate")
    ap.add_argument("--board", default="pico",
                    help="pico, esp32 (= esp32_devkitc) or any board_config module name")
    ap.add_argument("--out", required=True, help="output folder")
    ap.add_argument("--no-png", action="store_true")
    a = ap.parse_args(argv)
    channels = (1, 2) if a.channel == "both" else (int(a.channel),)
    try:
        w, board, plans = run_capture(a.phase_us, a.gap_us, a.rate_hz, a.ms, channels,
                                      a.burst_count, a.burst_rate_hz, a.alternate, a.board)
    except ValueError as e:
        print("capture: bad pulse parameters: %s" % e, file=sys.stderr)
        return 2
    os.makedirs(a.out, exist_ok=True)
    write_vcd(os.path.join(a.out, "pins.vcd"), wires(w, board), w.sys_hz, end_cycle=w.now)
    if not a.no_png:
        plot(os.path.join(a.out, "pulses.png"), w, board, channels, plans)
    report = {"board": a.board, "sys_hz": w.sys_hz, "simulated_ms": a.ms, "channels": {}}
    for ch in channels:
        pulses, violations = measure(w, board, ch)
        s = pulse_analysis.summary(pulses, w.sys_hz)
        s["requested"] = plans[ch].as_dict()
        s["violations"] = [v[1] for v in violations][:10]
        report["channels"][str(ch)] = s
    report["files"] = sorted(os.listdir(a.out))
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""DPDK's own dpdk-testpmd in io-forward mode on two net_null ports: the
ceiling of any DPDK program on the machine (Debian package dpdk-dev).

The same EAL setup as a generated program on the simulated NIC (no
hugepages, no PCI, net_null0 and net_null1), one forwarding core; testpmd
prints each port's Rx-pps once a second, and the figure is the median over
the periods (the first left out) of the two ports' sum.
"""
from __future__ import annotations

import re
import shutil
import signal
import statistics
import subprocess
import time
from dataclasses import dataclass, field

from codegen.program import dpdk_runtime_dir, simulated_eal_args

_RX_PPS = re.compile(r"Rx-pps:\s+(\d+)")


@dataclass
class IoForward:
    """testpmd's io-forward rate (Mpps over both ports), or why there is none."""

    mpps: float | None = None
    periods: list[float] = field(default_factory=list)
    error: str | None = None


def executable() -> str | None:
    """dpdk-testpmd's path, or None when dpdk-dev is not installed."""
    return shutil.which("dpdk-testpmd")


def run_testpmd(seconds: float = 3.0, start_timeout: float = 60.0) -> IoForward:
    """Run testpmd io-forward until it has printed `seconds` periods (plus the
    first, left out) and measure it."""
    exe = executable()
    if exe is None:
        return IoForward(error="dpdk-testpmd is not installed (Debian package dpdk-dev)")
    eal = simulated_eal_args(2, 2)  # lcore 0 main, lcore 1 forwards
    args = [exe, *eal, "--", "--forward-mode=io", "--nb-cores=1", "--stats-period=1",
            "--total-num-mbufs=8192"]
    if shutil.which("stdbuf"):  # line by line through the pipe, so periods are counted as they come
        args = ["stdbuf", "-oL", *args]
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               stdin=subprocess.DEVNULL)
    lines: list[str] = []
    wanted = 2 * (int(seconds + 0.999) + 2)  # Rx-pps lines: two ports, the zero and warm-up periods
    deadline = time.monotonic() + start_timeout + seconds
    try:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if sum("Rx-pps" in l for l in lines[-4:]) and sum("Rx-pps" in l for l in lines) >= wanted:
                break
            if time.monotonic() > deadline:
                break
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=20)
        lines.append(out)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        runtime = dpdk_runtime_dir(eal)
        if runtime is not None:
            shutil.rmtree(runtime, ignore_errors=True)
    return parse_periods("".join(lines))


def parse_periods(text: str) -> IoForward:
    """The rate from testpmd's periodic port statistics (two ports a period)."""
    rates = [int(m.group(1)) for m in _RX_PPS.finditer(text)]
    periods = [(rates[i] + rates[i + 1]) / 1e6 for i in range(0, len(rates) - 1, 2)]
    periods = [p for p in periods if p > 0]  # the first period shows 0 (no previous sample)
    kept = periods[1:] or periods
    if not kept:
        return IoForward(error="testpmd printed no statistics:\n" + text.strip()[-1500:])
    return IoForward(statistics.median(kept), periods)

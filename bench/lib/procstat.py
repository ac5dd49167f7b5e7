#!/usr/bin/env python3
"""CPU time and resident memory of a proxy's processes, read from /proc.

A proxy is named by the pid the runner started (nginx master, haproxy, ringrelay);
every descendant of it counts too (nginx workers), and /proc/PID/stat's utime+stime
already sums all threads of one process.

CLI:  procstat.py cpu PID...   total utime+stime in microseconds over the trees
      procstat.py rss PID...   total VmRSS in bytes over the trees
      procstat.py pids PID...  the pids that make up the trees
      procstat.py snapshot PROXY UPSTREAM
                               "MACHINE PROXY UPSTREAM": busy CPU microseconds of the
                               whole machine (/proc/stat), of the proxy tree and of the
                               upstream tree, so a run can tell how much CPU went to
                               processes that are not part of the bench
      procstat.py quiet SECONDS PERCENT
                               wait up to SECONDS until the machine's busy CPU over one
                               second is below PERCENT of one core; prints the last
                               reading (percent of one core)
"""
import os
import sys
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid):
    """Fields of /proc/PID/stat after the comm (which may hold spaces and ')')."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        data = f.read()
    return data[data.rindex(b")") + 2:].split()


def tree(roots):
    """The roots and all their live descendants, found through each process's ppid."""
    children = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            ppid = int(_stat_fields(name)[1])
        except (OSError, ValueError, IndexError):
            continue  # exited while we looked
        children.setdefault(ppid, []).append(int(name))
    found, todo = [], [int(r) for r in roots]
    while todo:
        pid = todo.pop()
        if pid in found or not os.path.exists(f"/proc/{pid}"):
            continue
        found.append(pid)
        todo.extend(children.get(pid, []))
    return sorted(found)


def cpu_us(roots):
    """utime+stime of every process in the trees, in microseconds."""
    total_ticks = 0
    for pid in tree(roots):
        try:
            fields = _stat_fields(pid)
        except OSError:
            continue
        # After the comm: state(0) ppid(1) ... utime is field 14 of stat, index 11 here.
        total_ticks += int(fields[11]) + int(fields[12])
    return total_ticks * 1_000_000 // CLK_TCK


def rss_bytes(roots):
    """VmRSS of every process in the trees, in bytes."""
    total = 0
    for pid in tree(roots):
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
                        break
        except OSError:
            continue
    return total


def machine_busy_us(include_nice=True):
    """CPU time the whole machine spent not idle, from the first line of /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal [guest guest_nice: already in user]
    busy = fields[0] + fields[2] + fields[5] + fields[6] + fields[7]
    if include_nice:
        busy += fields[1]
    return busy * 1_000_000 // CLK_TCK


def wait_quiet(max_seconds, percent):
    """Busy percent of one core over the last 1 s window once below percent, or at timeout.

    Niced work (background builds run at nice 10) is left out: it yields the CPU to the
    bench's processes, which run at nice 0, so it does not have to finish first. It
    still shows in a run's "other load", which counts every process outside the bench.
    """
    deadline = time.monotonic() + max_seconds
    while True:
        before = machine_busy_us(include_nice=False)
        time.sleep(1.0)
        busy = (machine_busy_us(include_nice=False) - before) / 10_000  # % of one core
        if busy < percent or time.monotonic() >= deadline:
            return busy


def main(argv):
    if len(argv) == 4 and argv[1] == "snapshot":
        proxy, upstream = cpu_us([argv[2]]), cpu_us([argv[3]])
        print(machine_busy_us(), proxy, upstream)
        return 0
    if len(argv) == 4 and argv[1] == "quiet":
        print(f"{wait_quiet(float(argv[2]), float(argv[3])):.0f}")
        return 0
    if len(argv) < 3 or argv[1] not in ("cpu", "rss", "pids"):
        print(__doc__, file=sys.stderr)
        return 2
    roots = argv[2:]
    if argv[1] == "cpu":
        print(cpu_us(roots))
    elif argv[1] == "rss":
        print(rss_bytes(roots))
    else:
        print(" ".join(str(p) for p in tree(roots)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

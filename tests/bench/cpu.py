"""Where the cores went during a benchmark run: CPU seconds per program, read from /proc (Linux).

    before = cpu_snapshot(); …run…; after = cpu_snapshot()
    used = cpu_split(before, after, {"app": app_pids, "postgres": "postgres"})

A group is a set of process ids (their children count too) or a program name; "other" is the rest of the machine
(the kernel included) and "all" the whole machine's busy time.
"""
import os
import resource
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_snapshot() -> dict:
    """Every process's (name, parent, CPU seconds, its exited children's included), this script's finished
    children, and the machine's busy time."""
    processes = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # exited meanwhile
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        # Its own time and that of its children which have exited (a PostgreSQL backend, a forked job)
        processes[int(entry.name)] = (name, int(fields[1]), sum(int(value) for value in fields[11:15]) / CLOCK_TICKS)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    first = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    busy = (sum(int(value) for value in first) - int(first[3]) - int(first[4])) / CLOCK_TICKS  # not idle, not iowait
    return {"processes": processes, "children": children.ru_utime + children.ru_stime, "busy": busy}


def cpu_split(before: dict, after: dict, groups: dict[str, set[int] | str], finished_children: str | None = None
              ) -> dict[str, float]:
    """CPU seconds each group used between two snapshots. `finished_children` names the group that this
    script's children which exited in between (wrk) belong to."""
    def group_of(pid: int, name: str, parent: int) -> str | None:
        for group, members in groups.items():
            if (name == members) if isinstance(members, str) else (pid in members or parent in members):
                return group
        return None

    used = dict.fromkeys(groups, 0.0)
    for pid, (name, parent, seconds) in after["processes"].items():
        group = group_of(pid, name, parent)
        if group is not None:
            used[group] += seconds - before["processes"].get(pid, (name, parent, 0.0))[2]
    if finished_children:
        used[finished_children] += after["children"] - before["children"]
    used["all"] = after["busy"] - before["busy"]
    used["other"] = used["all"] - sum(used[group] for group in groups)
    return used


def describe_split(used: dict[str, float], per: int, unit: str) -> str:
    """"CPU ms per lead: app 1.20, postgres 0.50, …" for `per` units of work."""
    return f"CPU ms per {unit}: " + ", ".join(f"{group} {seconds * 1000 / max(per, 1):.2f}"
                                             for group, seconds in used.items())

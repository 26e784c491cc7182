"""CPU seconds by process: how much of the machine each process of a run used (a server and its
children, the load generator, PostgreSQL), read from Linux's /proc.

A process's tree is the process and its descendants. Its CPU is the sum over the live members of
their own time (utime + stime) and the time of their children already waited for (cutime +
cstime), so a child that ended between two readings is still counted, by its parent. Where there
is no /proc (another OS, a PostgreSQL server on another machine), the figures are None.
"""

import os
import resource
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

PROC = Path("/proc")
TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (state is [0], ppid [1])."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may itself hold spaces and parentheses.
    return text[text.rindex(")") + 2 :].split()


def parent_pid(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return int(fields[1]) if fields else None


def process_cpu_seconds(pid: int) -> float | None:
    """utime + stime + cutime + cstime of one process, None when it does not exist."""
    fields = _stat_fields(pid)
    if fields is None:
        return None
    return sum(int(t) for t in fields[11:15]) / TICKS


def process_tree(root: int) -> list[int]:
    """`root` and its live descendants."""
    children: dict[int, list[int]] = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            ppid = parent_pid(int(entry.name))
            if ppid is not None:
                children.setdefault(ppid, []).append(int(entry.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, ()))
    return tree


def tree_cpu_seconds(root: int) -> float | None:
    """CPU seconds used so far by `root` and its descendants, None when `root` does not exist."""
    if process_cpu_seconds(root) is None:
        return None
    return sum(process_cpu_seconds(pid) or 0.0 for pid in process_tree(root))


def machine_cpu_seconds() -> float | None:
    """CPU seconds the whole machine has been busy (every core, idle and iowait left out)."""
    try:
        first = (PROC / "stat").read_text().splitlines()[0].split()
    except OSError:
        return None
    ticks = [int(t) for t in first[1:]]
    return (sum(ticks[:8]) - ticks[3] - ticks[4]) / TICKS  # user … steal, less idle and iowait


def child_cpu_seconds() -> float:
    """CPU seconds of this process's children that have ended and been waited for."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def snapshot(trees: Mapping[str, int | None]) -> dict[str, float | None]:
    """CPU seconds so far of each named process tree (None: not on this machine), of this
    process alone and of its ended children, and of the machine."""
    seconds: dict[str, float | None] = {
        name: tree_cpu_seconds(pid) if pid is not None else None for name, pid in trees.items()
    }
    own = os.times()
    seconds["benchmark process"] = own.user + own.system
    seconds["ended children"] = child_cpu_seconds()
    seconds["machine"] = machine_cpu_seconds()
    return seconds


def _by_name(
    first: Mapping[str, float | None],
    second: Mapping[str, float | None],
    combine: Callable[[float, float], float],
) -> dict[str, float | None]:
    seconds: dict[str, float | None] = {}
    for name, a in first.items():
        b = second.get(name)
        seconds[name] = round(combine(a, b), 3) if a is not None and b is not None else None
    return seconds


def used(
    before: Mapping[str, float | None], after: Mapping[str, float | None]
) -> dict[str, float | None]:
    """CPU seconds between two snapshots, by name (None where either is missing)."""
    return _by_name(before, after, lambda start, end: end - start)


def added(
    first: Mapping[str, float | None], second: Mapping[str, float | None]
) -> dict[str, float | None]:
    """Two stretches' CPU seconds together, by name (None where either is missing)."""
    return _by_name(first, second, lambda a, b: a + b)


@contextmanager
def cpu_by_process(trees: Mapping[str, int | None]) -> Iterator[dict[str, float | None]]:
    """CPU seconds each named process tree used inside the block (the dict is filled on the way
    out), with the benchmark process, the children it waited for meanwhile (a load generator
    run to its end) and the whole machine."""
    figures: dict[str, float | None] = {}
    before = snapshot(trees)
    try:
        yield figures
    finally:
        figures.update(used(before, snapshot(trees)))


def postmaster_pid(backend_pid: int) -> int | None:
    """The PostgreSQL server process (postmaster) of a backend, when it runs on this machine."""
    try:
        if not (PROC / str(backend_pid) / "comm").read_text().startswith("postgres"):
            return None
    except OSError:
        return None
    return parent_pid(backend_pid)

"""CPU seconds per group of processes during a timed run (for ``bench/scale.py``).

    >>> m = CpuMeter({"me": lambda: [os.getpid()]})
    >>> m.begin(); _ = sum(range(10**6)); sorted(m.end()["cores"])
    ['me', 'other']

Sampled with psutil every ``SAMPLE_S``; a process born during the run counts from its start. With
a PostgreSQL URL it also samples ``pg_stat_activity``: how many backends wait on the advisory write
lock, run, or idle.
"""
from __future__ import annotations

import os  # noqa: F401  (the doctest)
import threading
import time
from pathlib import Path

SAMPLE_S = 0.25


def _tree(pid: int) -> list[int]:
    import psutil
    try:
        p = psutil.Process(pid)
        return [pid] + [c.pid for c in p.children(recursive=True)]
    except psutil.Error:
        return []


class CpuMeter(threading.Thread):
    """CPU seconds per group of processes over a timed run. ``groups``: name -> a function giving
    the group's pids now (called at each sample: processes that come and go are counted from
    their first sample, or from their start when that is inside the run)."""

    def __init__(self, groups: dict, pg_url: str | None = None):
        super().__init__(daemon=True)
        self.groups = groups
        self.pg_url = pg_url
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self.group_of: dict[int, str] = {}
        self.autogroup: dict[int, str] = {}     # pid -> its scheduler autogroup (Linux)
        self.pg_samples: list[tuple[int, int, int]] = []   # (waiting on the write lock, active, idle)
        self._halt = threading.Event()

    def _sample(self) -> None:
        import psutil
        for name, pids in self.groups.items():
            for pid in pids():
                if pid in self.group_of and self.group_of[pid] != name:
                    continue
                try:
                    proc = psutil.Process(pid)
                    t = proc.cpu_times()
                    used = t.user + t.system
                    if pid not in self.first:
                        # Born during the run: all its CPU is the run's.
                        self.first[pid] = 0.0 if proc.create_time() >= self.t_wall0 else used
                        self.group_of[pid] = name
                        try:
                            self.autogroup[pid] = Path(f"/proc/{pid}/autogroup").read_text().split()[0]
                        except (OSError, IndexError):
                            pass
                    self.last[pid] = used
                except psutil.Error:
                    continue

    def _pg_sample(self, con) -> None:
        rows = con.execute(
            "SELECT wait_event_type, wait_event, state FROM pg_stat_activity "
            "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() "
            "AND datname = current_database()").fetchall()
        lock = sum(1 for t, e, s in rows if t == "Lock" and e == "advisory")
        active = sum(1 for t, e, s in rows if s == "active") - lock
        self.pg_samples.append((lock, active, len(rows) - lock - active))

    def begin(self) -> None:
        import psutil
        self.t_wall0 = time.time() - 0.05
        self.cpu0 = psutil.cpu_times()
        self.t0 = time.monotonic()
        self._sample()
        self.start()

    def run(self) -> None:
        con = None
        if self.pg_url:
            import psycopg
            con = psycopg.connect(self.pg_url, autocommit=True)
        try:
            while not self._halt.wait(SAMPLE_S):
                self._sample()
                if con is not None:
                    self._pg_sample(con)
        finally:
            if con is not None:
                con.close()

    def end(self) -> dict:
        import psutil
        self._sample()
        wall = time.monotonic() - self.t0
        cpu1 = psutil.cpu_times()
        self._halt.set()
        self.join()
        ncpu = psutil.cpu_count() or 1
        busy = ((cpu1.user + cpu1.nice + cpu1.system + getattr(cpu1, "irq", 0)
                 + getattr(cpu1, "softirq", 0) + getattr(cpu1, "steal", 0))
                - (self.cpu0.user + self.cpu0.nice + self.cpu0.system + getattr(self.cpu0, "irq", 0)
                   + getattr(self.cpu0, "softirq", 0) + getattr(self.cpu0, "steal", 0)))
        iowait = getattr(cpu1, "iowait", 0) - getattr(self.cpu0, "iowait", 0)
        cores: dict[str, float] = {name: 0.0 for name in self.groups}
        procs: dict[str, int] = {name: 0 for name in self.groups}
        for pid, name in self.group_of.items():
            cores[name] += max(0.0, self.last.get(pid, 0.0) - self.first[pid])
            procs[name] += 1
        out = {"wall_s": round(wall, 2), "cpus": ncpu,
               "cores": {k: round(v / wall, 2) for k, v in cores.items()},
               "processes": procs,
               "autogroups": {name: len({self.autogroup[p] for p, g in self.group_of.items()
                                         if g == name and p in self.autogroup})
                              for name in self.groups},
               "machine_busy_cores": round(busy / wall, 2),
               "machine_iowait_cores": round(iowait / wall, 2)}
        out["cores"]["other"] = round(max(0.0, busy / wall - sum(out["cores"].values())), 2)
        if self.pg_samples:
            n = len(self.pg_samples)
            out["pg_backends"] = {
                "samples": n,
                "waiting_on_write_lock": round(sum(s[0] for s in self.pg_samples) / n, 2),
                "active": round(sum(s[1] for s in self.pg_samples) / n, 2),
                "idle": round(sum(s[2] for s in self.pg_samples) / n, 2)}
        return out

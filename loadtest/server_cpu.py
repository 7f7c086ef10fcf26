"""CPU time a server process tree has used, read from /proc: what the server spent per answer."""

from __future__ import annotations

import os
from pathlib import Path


def server_cpu_s(port: int) -> float:
    """CPU seconds (user + system) used so far by the server listening on `port` and its workers.

    Less sensitive than req/s to other jobs on a shared machine: what the server spent per
    answer, whoever else was running.
    """
    stats = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().split(b"\0")
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # gone meanwhile
            stats[int(entry.name)] = (cmdline, int(fields[1]), int(fields[11]) + int(fields[12]))
    roots = {pid for pid, (cmdline, _, _) in stats.items() if b"--port" in cmdline
             and str(port).encode() in cmdline[cmdline.index(b"--port") + 1:cmdline.index(b"--port") + 2]}
    tree, grew = set(roots), True
    while grew:
        children = {pid for pid, (_, parent, _) in stats.items() if parent in tree} - tree
        tree |= children
        grew = bool(children)
    return sum(stats[pid][2] for pid in tree) / os.sysconf("SC_CLK_TCK")

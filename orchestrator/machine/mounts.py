"""The mount points of this process's mount namespace, read through psutil.

Two set-up tools must not delete through a mount: a failed debootstrap can
leave /proc, /sys or a bind-mounted /dev mounted inside its target
(`debian_base`), and the local swarm's engines mount below its state folder
(`swarm`). The swarm also removes its engines' cgroups, under every cgroup
hierarchy mounted here. This module owns reading those mounts.
"""

from __future__ import annotations

from pathlib import Path
from typing import List

import psutil


def mount_points() -> List[str]:
    """Every mount point of this process's mount namespace, in mount order.

    Raises:
        OSError: the mount table cannot be read.
    """
    return [partition.mountpoint for partition in psutil.disk_partitions(all=True)]


def mounts_below(path: Path) -> List[str]:
    """Mount points at or below `path`, deepest first (to unmount in that order).

    Returns:
        The mount points; [] when the mount table cannot be read.
    """
    prefix = str(path.resolve())
    try:
        points = mount_points()
    except OSError:
        return []
    return sorted((p for p in points if p == prefix or p.startswith(prefix + "/")), reverse=True)


def cgroup_hierarchies() -> List[str]:
    """Where the cgroup hierarchies (v1 controllers and v2) are mounted, e.g.
    ``/sys/fs/cgroup/memory`` or ``/sys/fs/cgroup``.

    Raises:
        OSError: the mount table cannot be read.
    """
    return [partition.mountpoint for partition in psutil.disk_partitions(all=True)
            if partition.fstype in ("cgroup", "cgroup2")]

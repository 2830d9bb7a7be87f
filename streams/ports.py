"""Local TCP ports: is one free, and if not, which process holds it (for error messages)."""

from __future__ import annotations

import contextlib
import socket
from pathlib import Path

__all__ = ["describe_listener", "free_port", "port_is_free"]


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Return True when a server could listen on ``host:port`` now.

    SO_REUSEADDR matches what Kafka and aiohttp set, so a port held only by connections in
    TIME_WAIT counts as free, as it would for them.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port on ``host`` that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def describe_listener(port: int) -> str:
    """Name the process listening on ``port`` as ``'pid N: command'``, or ``'unknown process'``.

    Best effort from ``/proc`` (Linux); processes of other users are not visible.
    """
    inodes = _listening_inodes(port)
    if not inodes:
        return "unknown process"
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in (proc / "fd").iterdir():
                target = str(fd.readlink())
                if target.startswith("socket:[") and target[8:-1] in inodes:
                    cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                    return f"pid {proc.name}: {cmdline.strip()[:120]}"
    return "unknown process"


def _listening_inodes(port: int) -> set[str]:
    listen_state = "0A"
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                local_port = int(fields[1].rsplit(":", 1)[1], 16)
                if local_port == port and fields[3] == listen_state:
                    inodes.add(fields[9])
    return inodes

"""Is a TCP port free to listen on, and if not, which process holds it (Linux's /proc; elsewhere: unknown)."""

from __future__ import annotations

import contextlib
import errno
import socket
from dataclasses import dataclass
from pathlib import Path

_LISTEN = "0A"  # the TCP state of a listening socket in /proc/net/tcp


@dataclass(frozen=True)
class Holder:
    pid: int
    command: str


def is_port_free(host: str, port: int) -> bool:
    """Whether a server could listen on (host, port) now. SO_REUSEADDR as uvicorn sets it: a port left in
    TIME_WAIT by an earlier run counts as free, one with a listener does not."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            if error.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def free_port_near(host: str, port: int, *, tries: int = 50) -> int | None:
    """The first free port after `port`, for a suggestion."""
    for candidate in range(port + 1, min(port + 1 + tries, 65536)):
        if is_port_free(host, candidate):
            return candidate
    return None


def _listening_inodes(port: int) -> set[str]:
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if len(fields) > 9 and fields[3] == _LISTEN and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(fields[9])
    return inodes


def port_holder(port: int) -> Holder | None:
    """The process listening on `port`, when this user may see it."""
    inodes = {f"socket:[{inode}]" for inode in _listening_inodes(port)}
    if not inodes:
        return None
    for process in Path("/proc").iterdir():
        if not process.name.isdigit():
            continue
        try:
            held = any(str(fd.readlink()) in inodes for fd in (process / "fd").iterdir())
            if held:
                raw = (process / "cmdline").read_bytes()
                command = raw.replace(b"\0", b" ").decode(errors="replace").strip()
                return Holder(pid=int(process.name), command=command or process.name)
        except OSError:  # gone, or not ours to look at
            continue
    return None


def busy_port_message(host: str, port: int) -> str:
    """What to do about a port someone else listens on: which process to stop, or which port to use."""
    holder = port_holder(port)
    who = f"process {holder.pid} ({holder.command[:120]})" if holder else "another process"
    lines = [f"port {port} on {host} is already in use by {who}."]
    if holder:
        lines.append(f"Stop it (kill {holder.pid}), or choose another port.")
    alternative = free_port_near(host, port)
    if alternative is not None:
        lines.append(f"Port {alternative} is free: tokentrail demo --port {alternative}")
    return "\n".join(lines)

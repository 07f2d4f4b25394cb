"""One running gateway per state directory: its seq mark, queues and history are its own."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from pathlib import Path

from edgegw.config import ConfigError

STATE_LOCK = "edgegw.lock"


def lock_state_dir(d: Path, mode: int = os.O_RDWR | os.O_CREAT) -> int:
    """Hold `<d>/edgegw.lock` (flock, released when the process ends, even by kill -9): one running
    gateway per state directory, whose seq and queues it owns. The open descriptor, to keep for the
    life of the process (-1 where the directory cannot be written: nothing to hold); ConfigError
    naming the holder's pid when another process has it."""
    lock = d / STATE_LOCK
    try:
        fd = os.open(lock, mode | getattr(os, "O_CLOEXEC", 0), 0o644)
    except OSError as e:
        if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            return -1  # a read-only state directory keeps nothing another gateway could spoil
        raise ConfigError([f"cannot open {lock}: {e.strerror}"]) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = ""
        with contextlib.suppress(OSError, ValueError, IndexError):
            holder = f" (pid {int(os.pread(fd, 32, 0).split()[0])})"
        os.close(fd)
        raise ConfigError([f"{d} is in use by another running gateway{holder}: one gateway per state directory"]) from None
    if mode & os.O_RDWR:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
    return fd

"""A full disk under the outbox: a 2 MB tmpfs filled by someone else. The bridge keeps running,
raises its alarm once (not an error line per alert), holds what it cannot write, and when space
returns stores it, clears the alarm and delivers everything."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgegw.sinks import outbox as outbox_module
from tests.peers import free_port, until
from tests.sinks.test_bridge import Observer, bridge_config
from tests.sinks.test_bridge_server import Gateway, Lines


@pytest.fixture
def tiny_fs(tmp_path: Path) -> Iterator[Path]:
    d = tmp_path / "fs"
    d.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(d)], capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (root needed): {r.stderr.decode().strip()}")
    try:
        yield d
    finally:
        subprocess.run(["umount", "-l", str(d)], capture_output=True)


def fill(path: Path) -> None:
    """Take every free block of the file system."""
    with open(path, "wb") as f, contextlib.suppress(OSError):
        while True:
            f.write(b"\0" * 65536)
            f.flush()


async def test_disk_full_alarm_hold_and_recover(tiny_fs: Path, broker_factory, monkeypatch: pytest.MonkeyPatch) -> None:
    lines = Lines()
    monkeypatch.setattr(outbox_module, "log", lines)
    port = free_port()
    cfg = bridge_config(1883, port, tiny_fs / "outbox.db", "upstream.outbox.max_mb=1", "upstream.outbox.commit_ms=50")
    gw = Gateway(cfg)
    assert (tiny_fs / "outbox.db.reserve").stat().st_size == 128 << 10
    task = asyncio.create_task(gw.bridge.run())
    sent = [gw.alert("pump-1", i) for i in range(20)]
    filler = tiny_fs / "someone-elses-log"
    try:
        fill(filler)
        sent += [gw.alert("pump-2", i) for i in range(400)]
        await until(lambda: gw.raised("outbox_disk_full"), 10)
        ob = gw.bridge.outbox
        assert ob.space_short and ob.write_errors > 10 and ob.unstored
        assert not (tiny_fs / "outbox.db.reserve").exists(), "the headroom was given up first"
        failed_lines = [e for e in lines.events if e.startswith("outbox write failed")]
        assert 1 <= len(failed_lines) <= 3, "rate-limited, not one line per alert"
        assert not task.done()

        filler.unlink()  # space is back
        await until(lambda: not ob.space_short and not ob.unstored, 20)
        await until(lambda: any(a.kind == "outbox_disk_full" and str(a.state) == "cleared" for a in gw.alarms), 10)
        assert (tiny_fs / "outbox.db.reserve").exists()
        broker_factory(port=port)
        async with Observer(port, ident="disk-observer") as obs:
            await obs.wait(lambda o: {a.id for a in sent} <= {d["id"] for d in o.records("/alerts/")}, 30)
    finally:
        with contextlib.suppress(FileNotFoundError):
            filler.unlink()
        await gw.bridge.close(5)
        await asyncio.wait_for(task, 10)
    assert gw.bridge.outbox.lost_unstored == 0

"""`edgegw watch` acknowledges the selected alarm through the gateway's command topic."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

from edgegw.watch import watch
from tests.helpers import publish, pump, running_gateway
from tests.notify.peers import notify_config
from tests.peers import until


async def test_watch_acks_the_selected_alarm(mosquitto, tmp_path: Path) -> None:
    cfg = notify_config(tmp_path, mosquitto.port, {"state_dir": str(tmp_path / "state")})
    site = cfg.gateway.site
    async with running_gateway(cfg):
        await publish(mosquitto.port, "plant/pumps/pump-1/telemetry", [pump(8.0, temperature=85.0)])
        keys: asyncio.Queue[str] = asyncio.Queue()
        out, stop = io.StringIO(), asyncio.Event()
        task = asyncio.create_task(
            watch(
                "127.0.0.1",
                mosquitto.port,
                [f"alerts/{site}/#"],
                out,
                tty=True,
                colour_on=False,
                stop=stop,
                keys=keys,
                user="ann",
            )
        )
        await until(lambda: "2 active" in out.getvalue(), what="both alarms on the board")
        for k in ("j", "j", "\x1b[A", "a"):  # down past the end, back up to the first row, acknowledge
            keys.put_nowait(k)
        await until(lambda: "[acked by ann]" in out.getvalue(), what="the acknowledged alarm on the board")
        stop.set()
        board = await asyncio.wait_for(task, 5)
    acked = [d for d in board.rows() if d.get("acked_by")]
    assert len(acked) == 1 and len(board.rows()) == 2
    assert f"acknowledgement sent for pump-1 threshold/{acked[0]['source']}" in out.getvalue()

"""An MQTT broker inside the demo process (amqtt), for machines that have none running.

Only what the demo needs: one TCP listener, anonymous access, retained messages. amqtt's
default plugins also log every packet and publish $SYS topics; both are left out.
"""

from __future__ import annotations

import logging
import socket


def broker_reachable(host: str, port: int, timeout: float = 0.5) -> bool:
    """Does something accept TCP connections there? (The demo then assumes it speaks MQTT.)"""
    try:
        socket.create_connection((host, port), timeout).close()
    except OSError:
        return False
    return True


class EmbeddedBroker:
    """`await start()` listens on host:port; `await stop()` closes every session and the listener."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._broker = None

    async def start(self) -> None:
        from amqtt.broker import Broker

        for name in ("amqtt", "transitions"):
            logging.getLogger(name).setLevel(logging.ERROR)
        cfg = {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
        }
        broker = Broker(cfg)
        await broker.start()
        self._broker = broker

    async def stop(self) -> None:
        if self._broker is not None:
            broker, self._broker = self._broker, None
            await broker.shutdown()

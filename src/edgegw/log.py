"""structlog set-up: JSON lines when stdout is not a TTY (journald, files), console on a TTY.
Standard-library logs (aiomqtt, asyncua, aiocoap) go through the same processors."""

from __future__ import annotations

import logging
import sys

import structlog


def _no_locals() -> structlog.typing.ExceptionRenderer:
    """Tracebacks without local variables: a frame's locals can hold a password."""
    if structlog.dev.rich is not None:
        return structlog.dev.RichTracebackFormatter(show_locals=False)
    return structlog.dev.plain_traceback


def setup(level: str = "info", fmt: str = "auto") -> None:
    lvl = getattr(logging, level.upper(), logging.INFO)
    console = fmt == "console" or (fmt == "auto" and sys.stderr.isatty())
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]
    renderer: structlog.types.Processor = (
        structlog.dev.ConsoleRenderer(exception_formatter=_no_locals()) if console else structlog.processors.JSONRenderer()
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(lvl),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                *([] if console else [structlog.processors.format_exc_info]),
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(lvl)
    # chatty libraries: their warnings matter, their debug chatter does not
    for name in ("asyncua", "aiocoap", "amqtt", "transitions"):
        logging.getLogger(name).setLevel(max(lvl, logging.WARNING))

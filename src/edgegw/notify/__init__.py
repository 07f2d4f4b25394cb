"""Alarms reach people: email and webhook targets behind durable per-target queues, shelves (set by
the alarms room's commands), and the alarm journal. Built by the gateway only when `notify:` is configured;
importing this package loads no delivery library (aiosmtplib and httpx load with their target)."""

from __future__ import annotations


class DeliveryError(Exception):
    """A target did not accept a notification (unreachable, refused, timed out); it is retried."""


class DeliveryRefused(DeliveryError):
    """The peer refused this message itself (HTTP 400/413/422, SMTP 5xx to the message): sending it
    again would not help, so it goes to the queue's dead letters and the queue moves on."""


__all__ = ["DeliveryError", "DeliveryRefused"]

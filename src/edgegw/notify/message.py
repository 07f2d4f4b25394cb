"""What a person reads: an email (plain text plus simple HTML) for one alarm or a digest of several.

Each alarm says the asset, what it is about (signal or model), the value and limit or the score
and threshold, since when, and for model alarms the signals that drove it. Input is the alert
JSON exactly as published on MQTT, so a queued notification needs nothing but its payload.
"""

from __future__ import annotations

import html
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any


def message_id(alert_ids: list[str], gateway: str) -> str:
    """The same alarms always get the same Message-ID: a resend after a crash can be de-duplicated."""
    first = alert_ids[0] if alert_ids else "none"
    tail = f".{len(alert_ids)}" if len(alert_ids) > 1 else ""
    domain = "".join(c if c.isalnum() or c in "-." else "-" for c in gateway) or "gateway"
    return f"<{first}{tail}@{domain}.edgegw>"


def _num(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def about(d: dict[str, Any]) -> str:
    """The signal or model the alarm is about."""
    if d.get("model"):
        return f"model {d['model']}"
    return f"signal {d.get('signal') or d.get('source', '?')}"


def facts(d: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, text) lines describing one alarm, in reading order."""
    out = [
        ("Asset", str(d.get("asset", "?"))),
        ("Alarm", f"{d.get('kind', '?')} on {about(d)}"),
        ("State", f"{d.get('state', '?')} ({d.get('severity', '?')})"),
    ]
    unit = f" {d['unit']}" if d.get("unit") else ""
    if "value" in d:
        lim = f", limit {_num(d['limit'])}{unit}" + (f" ({d['level']})" if d.get("level") else "") if "limit" in d else ""
        rng = f", valid range {d['range']}" if d.get("range") else ""
        out.append(("Value", f"{_num(d['value'])}{unit}{lim}{rng}"))
    if "silent_s" in d:
        out.append(("Silent", f"{_num(d['silent_s'])} s (limit {_num(d.get('limit', '?'))} s)"))
    if "score" in d:
        out.append(("Score", f"{_num(d['score'])}, threshold {_num(d.get('threshold', '?'))}"))
    if "class" in d:
        out.append(("Likely fault", f"{d['class']} (probability {_num(d.get('probability', '?'))})"))
    top = d.get("top")
    if isinstance(top, list) and top:
        out.append(
            (
                "Top signals",
                ", ".join(
                    f"{t.get('signal', '?')} ({t.get('feature', '?')}, z {_num(t.get('z', '?'))})"
                    if isinstance(t, dict)
                    else str(t)
                    for t in top
                ),
            )
        )
    since = d.get("raised_at") if d.get("state") == "cleared" else d.get("ts")
    out.append(("Since" if d.get("state") != "cleared" else "Raised at", str(since or d.get("ts", "?"))))
    if d.get("state") == "cleared":
        out.append(("Cleared at", str(d.get("ts", "?"))))
    if d.get("message"):
        out.append(("Message", str(d["message"])))
    out.append(("Gateway", f"{d.get('gateway', '?')} (site {d.get('site', '?')})"))
    return out


def headline(d: dict[str, Any]) -> str:
    sev = str(d.get("severity", "")).upper()
    return f"{sev} {d.get('asset', '?')} {d.get('kind', '?')} {d.get('source', '')} {d.get('state', '')}"


def subject(alerts: list[dict[str, Any]], prefix: str) -> str:
    if len(alerts) == 1:
        return f"{prefix} {headline(alerts[0])}".strip()
    raised = sum(a.get("state") == "raised" for a in alerts)
    assets = sorted({str(a.get("asset", "?")) for a in alerts})
    shown = ", ".join(assets[:4]) + (f" and {len(assets) - 4} more" if len(assets) > 4 else "")
    return f"{prefix} {len(alerts)} alarm changes ({raised} raised) on {shown}".strip()


def text_body(alerts: list[dict[str, Any]]) -> str:
    parts = []
    if len(alerts) > 1:
        parts.append(f"{len(alerts)} alarm changes, oldest first.\n")
    for d in alerts:
        block = [headline(d)] if len(alerts) > 1 else []
        block += [f"{label + ':':<13} {text}" for label, text in facts(d)]
        parts.append("\n".join(block))
    return "\n\n".join(parts) + "\n"


_COLOUR = {"critical": "#b00020", "warning": "#b26a00", "info": "#1f6f43"}


def html_body(alerts: list[dict[str, Any]]) -> str:
    e = html.escape
    out = ['<html><body style="font-family: sans-serif">']
    if len(alerts) > 1:
        out.append(f"<p>{len(alerts)} alarm changes, oldest first.</p>")
    for d in alerts:
        colour = _COLOUR.get(str(d.get("severity")), "#333")
        out.append(f'<h3 style="color: {colour}">{e(headline(d))}</h3><table cellpadding="3">')
        out += [f'<tr><th align="left">{e(label)}</th><td>{e(text)}</td></tr>' for label, text in facts(d)]
        out.append("</table>")
    out.append("</body></html>")
    return "\n".join(out)


def email(alerts: list[dict[str, Any]], sender: str, to: list[str], prefix: str, gateway: str) -> EmailMessage:
    """One email for the alarms (one or a digest); Message-ID from their ids."""
    m = EmailMessage()
    m["Subject"] = subject(alerts, prefix)
    m["From"] = sender
    m["To"] = ", ".join(to)
    m["Date"] = formatdate(localtime=False, usegmt=True)
    m["Message-ID"] = message_id([str(a.get("id", "")) for a in alerts], gateway)
    m["X-Edgegw-Alert-Ids"] = " ".join(str(a.get("id", "")) for a in alerts)
    m.set_content(text_body(alerts))
    m.add_alternative(html_body(alerts), subtype="html")
    return m

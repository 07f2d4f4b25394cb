"""The operator's page: memory, alert -> DOM latency, first values, page weight.

    python benchmarks/bench_web.py [--quick]

The real `edgegw run` daemon on config/example.yaml (four pumps at 2 Hz from a paho publisher
in this process, the shipped model, alarm delays 0) against a real mosquitto, twice in the same
run: without `web:` (the reference) and with it, five logged-in Chromium pages open (Debian's
chromium through Playwright). Measured:

  rss_mb            the daemon's RSS without the page, and with five pages open (twice, to see
                    whether it grows with the time the browsers stay open)
  alert_dom_ms      publish of a reading over hihi -> pump-2's tile attribute changes in the
                    page (a MutationObserver stamps Date.now()); next to publish -> the MQTT
                    alert at a subscriber in this process, p50/p99 over the cycles (hot, cool)
  first_values_ms   navigation start -> four tiles with values, from a cold browser context
  page_kb           HTML + scripts + styles as served gzipped

Writes benchmarks/results/web.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import paho.mqtt.client as mqtt

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _rig
from _common import write

from edgegw.web.auth import User, hash_password, write_users

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--headless=new",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
PUMPS = ["pump-1", "pump-2", "pump-3", "pump-4"]
OBSERVE = """() => { window.__changes = []; const el = document.querySelector('[data-asset="pump-2"]');
  new MutationObserver(() => window.__changes.push([Date.now(), el.isConnected ? el.getAttribute('data-state') : '?']))
    .observe(el, {attributes: true, attributeFilter: ['data-state']}); }"""


class Feed:
    """Four pumps at 2 Hz; `hot` sends pump-2 over hihi. Publish times on the wall clock."""

    def __init__(self, port: int) -> None:
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()
        self.running = True
        self.vib = dict.fromkeys(PUMPS, 3.0)
        self.lock = threading.Lock()
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def send(self, asset: str, vib: float) -> float:
        with self.lock:
            ts = time.time()
            d = {
                "ts": ts,
                "vibration": vib,
                "pressure": 5.0,
                "temperature": 55.0,
                "flow": 60.0,
                "current": 30.0,
                "suction_pressure": 1.2,
            }
            self.c.publish(f"plant/pumps/{asset}/telemetry", json.dumps(d), qos=0)
            return ts

    def _run(self) -> None:
        while self.running:
            for a in PUMPS:
                self.send(a, self.vib[a])
            time.sleep(0.5)

    def close(self) -> None:
        self.running = False
        self.t.join()
        self.c.loop_stop()
        self.c.disconnect()


def p(a: list[float], q: float) -> float:
    return round(float(np.percentile(a, q)), 1) if a else float("nan")


def run(quick: bool) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    wd = _rig.workdir("web")
    b = _rig.broker(wd)
    users = wd / "users"
    write_users(users, {"bench": User("bench", "operator", hash_password("bench-pass-1"))})
    web_port = _rig.free_port()
    settle = 15 if quick else 40
    cycles = 20 if quick else 60

    def mutate_web(d: dict[str, Any]) -> None:
        d["web"] = {"listen": f"127.0.0.1:{web_port}", "users_file": str(users)}

    plain = _rig.gateway_config(wd, 0, name="plain.yaml")
    with_web = _rig.gateway_config(wd, 0, name="web.yaml", mutate=mutate_web)
    for cfg in (plain, with_web):  # the four example pumps, not the rig's n + probe
        import yaml

        d = yaml.safe_load(cfg.read_text())
        d["assets"] = [{"id": a, "profile": "pump"} for a in PUMPS]
        cfg.write_text(yaml.safe_dump(d, sort_keys=False))

    w = _rig.Watcher(b.port)
    out: dict[str, Any] = {"settle_s": settle}
    feed = Feed(b.port)
    try:
        gw = _rig.Gateway(plain, b.port, w, wd)
        time.sleep(settle)
        out["rss_mb_without_page"] = round(gw.rss_mb(), 1)
        gw.close()

        gw = _rig.Gateway(with_web, b.port, w, wd)
        url = f"http://127.0.0.1:{web_port}/"
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            ctx = browser.new_context()
            page = ctx.new_page()
            page.goto(url)
            page.fill('input[name="username"]', "bench")
            page.fill('input[name="password"]', "bench-pass-1")
            page.press('input[name="password"]', "Enter")
            page.wait_for_selector("[data-asset]")
            state = ctx.storage_state()
            pages = [page]
            for _ in range(4):
                c = browser.new_context(storage_state=state)
                pg = c.new_page()
                pg.goto(url)
                pg.wait_for_selector("[data-asset]")
                pages.append(pg)
            time.sleep(settle)
            out["rss_mb_with_5_pages"] = round(gw.rss_mb(), 1)

            # publish -> DOM, next to publish -> MQTT alert
            page.wait_for_selector('[data-asset="pump-2"]')
            page.evaluate(OBSERVE)
            seen_at: list[tuple[float, str]] = []  # pump-2's vibration limit alarm: (wall clock, state)

            def on_alert(_now: float, d: dict[str, Any]) -> None:
                if (d.get("asset"), d.get("kind"), d.get("source")) == ("pump-2", "threshold", "vibration"):
                    seen_at.append((time.time(), str(d.get("state"))))

            w.on_alert = on_alert
            dom_ms: list[float] = []
            mqtt_ms: list[float] = []
            for i in range(cycles):
                for vib, hot in ((12.5, True), (3.0, False)):
                    n = len(page.evaluate("window.__changes"))
                    seen = len(seen_at)
                    feed.vib["pump-2"] = vib
                    t_pub = feed.send("pump-2", vib)
                    deadline = time.monotonic() + 5
                    changes: list[list[Any]] = []
                    while time.monotonic() < deadline:
                        changes = page.evaluate("window.__changes")
                        if len(changes) > n and (changes[-1][1] == "critical") == hot:
                            break
                        time.sleep(0.01)
                    else:
                        raise RuntimeError(f"cycle {i}: pump-2's tile did not {'turn' if hot else 'leave'} critical")
                    dom_ms.append(changes[-1][0] - t_pub * 1000)
                    want = "raised" if hot else "cleared"
                    if w.wait(lambda s=seen, want=want: any(st == want for _, st in seen_at[s:]), 2):  # type: ignore[misc]
                        mqtt_ms.append((next(t for t, st in seen_at[seen:] if st == want) - t_pub) * 1000)
                    time.sleep(0.25)
            out["alert_dom_ms"] = {"p50": p(dom_ms, 50), "p99": p(dom_ms, 99), "max": p(dom_ms, 100), "n": len(dom_ms)}
            out["alert_mqtt_ms"] = {"p50": p(mqtt_ms, 50), "p99": p(mqtt_ms, 99), "max": p(mqtt_ms, 100), "n": len(mqtt_ms)}

            # first values after navigation from a cold context (the session cookie only)
            firsts = []
            for _ in range(5):
                c = browser.new_context(storage_state=state)
                pg = c.new_page()
                pg.goto(url, wait_until="commit")
                pg.wait_for_function(
                    "() => document.querySelectorAll('[data-asset] .vals dd').length >= 24 && "
                    "[...document.querySelectorAll('[data-asset=\"pump-1\"] .vals dd')]"
                    ".every(e => !e.textContent.startsWith('–'))"
                )
                firsts.append(pg.evaluate("performance.now()"))
                c.close()
            out["first_values_ms"] = {"median": round(statistics.median(firsts), 1), "max": round(max(firsts), 1)}

            # page weight, as served gzipped
            sizes = page.evaluate(
                "performance.getEntriesByType('resource').concat(performance.getEntriesByType('navigation'))"
                ".filter(e => !e.name.includes('/api/')).map(e => [e.name, e.encodedBodySize])"
            )
            out["page_kb"] = round(sum(s for _, s in sizes) / 1024, 1)
            out["page_files"] = {n.rsplit("/", 1)[-1] or "index": s for n, s in sizes}

            time.sleep(settle)
            out["rss_mb_with_5_pages_later"] = round(gw.rss_mb(), 1)
            browser.close()
        gw.close()
    finally:
        feed.close()
        w.close()
        b.stop()
    out["page_adds_mb"] = round(out["rss_mb_with_5_pages"] - out["rss_mb_without_page"], 1)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="shorter settling and fewer cycles")
    args = ap.parse_args()
    r = run(args.quick)
    print(f"RSS without the page       {r['rss_mb_without_page']:7.1f} MB")
    print(f"RSS with 5 pages open      {r['rss_mb_with_5_pages']:7.1f} MB  (+{r['page_adds_mb']} MB; target <= +15 MB)")
    print(f"  {r['settle_s']} s later              {r['rss_mb_with_5_pages_later']:7.1f} MB")
    a, m = r["alert_dom_ms"], r["alert_mqtt_ms"]
    print(f"publish -> DOM             p50 {a['p50']} ms  p99 {a['p99']} ms  max {a['max']} ms", end="")
    print(f"  (n={a['n']}; target p50 <= 25, p99 <= 100)")
    print(f"publish -> MQTT alert      p50 {m['p50']} ms  p99 {m['p99']} ms  (reference, same run)")
    f = r["first_values_ms"]
    print(f"first values after nav     median {f['median']} ms  max {f['max']} ms  (target <= 500)")
    print(f"page weight (gzipped)      {r['page_kb']} KB  (target <= 300 KB)")
    print(f"written to {write('web', r)}")


if __name__ == "__main__":
    main()

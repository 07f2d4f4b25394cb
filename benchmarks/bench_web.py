"""The operator's page: memory, alert -> DOM latency, first values, page weight.

    python benchmarks/bench_web.py [--quick]

The real `edgegw run` daemon on config/example.yaml with 50 pumps and the probe asset (the shipped
model, alarm delays 0) against a real mosquitto, under background load at 10 % of the gateway's
highest sustained rate (benchmarks/loadgen.py), twice in the same run: without `web:` (the
reference) and with it, five logged-in Chromium pages open (Debian's chromium through
Playwright). The probe gets 2 Hz from a paho publisher in this process. Measured:

  rss_mb            the daemon's RSS without the page, and with five pages open (twice, to see
                    whether it grows with the time the browsers stay open)
  alert_dom_ms      publish of a probe reading over hihi (and back) -> the probe's alarm row
                    appears (goes) in the page (a MutationObserver stamps Date.now()); the tile
                    itself may stay critical when the model also flags the spikes
  alert_mqtt_ms_*   publish -> the MQTT alert at a subscriber in this process, without the page
                    and with five pages open, p50/p99 over the same cycles
  first_values_ms   navigation start -> every tile with values, from a cold browser context
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
N_LOAD = 50  # pumps the background load goes to (the probe is the 51st asset)
OBSERVE = """() => { window.__changes = []; let last = null;
  const rec = () => { const st = document.querySelector('[data-alarm-key="probe/threshold/vibration"]') ? 'alarm' : 'none';
    if (st !== last) { last = st; window.__changes.push([Date.now(), st]); } };
  rec();
  new MutationObserver(rec).observe(document.getElementById('main'), {subtree: true, childList: true}); }"""


class Feed:
    """The probe asset at 2 Hz (its vibration in `vib`); `send` stamps the publish on the wall clock."""

    def __init__(self, port: int) -> None:
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()
        self.running = True
        self.vib = {_rig.PROBE: 3.0}
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
            for a, v in list(self.vib.items()):
                self.send(a, v)
            time.sleep(0.5)

    def close(self) -> None:
        self.running = False
        self.t.join()
        self.c.loop_stop()
        self.c.disconnect()


def p(a: list[float], q: float) -> float:
    return round(float(np.percentile(a, q)), 1) if a else float("nan")


SUBSCRIBER = """
import json, sys, time
import paho.mqtt.client as mqtt
def msg(c, u, m):
    d = json.loads(m.payload or b"{}")
    print(time.time(), d.get("state"), flush=True)
c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
c.on_message = msg
c.on_connect = lambda cl, *a: cl.subscribe("alerts/+/probe/threshold/vibration", 1)
c.connect("127.0.0.1", int(sys.argv[1]))
c.loop_forever()
"""


class AlertClock:
    """The probe's vibration alarm as a subscriber in its own process sees it: (wall clock, state).
    Its own process, so the browser driver in this one never delays the stamp."""

    def __init__(self, port: int) -> None:
        import subprocess

        self.seen: list[tuple[float, str]] = []
        self.cond = threading.Condition()
        self.proc = subprocess.Popen([sys.executable, "-c", SUBSCRIBER, str(port)], stdout=subprocess.PIPE, text=True)
        threading.Thread(target=self._read, daemon=True).start()
        time.sleep(1.0)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            t, state = line.split()
            with self.cond:
                self.seen.append((float(t), state))
                self.cond.notify_all()

    def wait(self, start: int, state: str, timeout: float) -> float | None:
        end = time.monotonic() + timeout
        with self.cond:
            while True:
                got = next((t for t, st in self.seen[start:] if st == state), None)
                if got is not None or time.monotonic() >= end:
                    return got
                self.cond.wait(max(0.0, end - time.monotonic()))

    def close(self) -> None:
        _rig.stop(self.proc)  # type: ignore[arg-type]


def cycles_of(feed: Feed, clock: AlertClock, n: int, page: Any = None) -> tuple[list[float], list[float]]:
    """n hot/cool cycles of the probe's vibration: publish -> MQTT alert (raise, clear) and, with a
    page, publish -> the probe tile's data-state change in the DOM. Milliseconds."""
    dom_ms: list[float] = []
    mqtt_ms: list[float] = []
    if page is not None:
        page.evaluate(OBSERVE)
    for i in range(n):
        for vib, hot in ((12.5, True), (3.0, False)):
            k = len(page.evaluate("window.__changes")) if page is not None else 0
            seen = len(clock.seen)
            feed.vib[_rig.PROBE] = vib
            t_pub = feed.send(_rig.PROBE, vib)
            got = clock.wait(seen, "raised" if hot else "cleared", 5)
            if got is not None:
                mqtt_ms.append((got - t_pub) * 1000)
            if page is not None:  # read after the MQTT alert: the page stamped the change itself, and polling
                deadline = time.monotonic() + 5  # it earlier would load this process while it times MQTT
                changes: list[list[Any]] = []
                while time.monotonic() < deadline:
                    changes = page.evaluate("window.__changes")
                    if len(changes) > k and (changes[-1][1] == "alarm") == hot:
                        break
                    time.sleep(0.05)
                else:
                    raise RuntimeError(f"cycle {i}: the probe's alarm row did not {'appear' if hot else 'go'}")
                dom_ms.append(changes[-1][0] - t_pub * 1000)
            time.sleep(0.25)
    return dom_ms, mqtt_ms


def stats(a: list[float]) -> dict[str, Any]:
    return {"p50": p(a, 50), "p99": p(a, 99), "max": p(a, 100), "n": len(a)}


def run(quick: bool, load: float, pin: bool = False) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    wd = _rig.workdir("web")
    b = _rig.broker(wd)
    users = wd / "users"
    write_users(users, {"bench": User("bench", "operator", hash_password("bench-pass-1"))})
    web_port = _rig.free_port()
    settle = 15 if quick else 40
    n = 20 if quick else 60

    def state(name: str) -> Path:  # each run a state dir of its own (else /var/lib/edgegw where it exists)
        (wd / name).mkdir()
        return wd / name

    def mutate_plain(d: dict[str, Any]) -> None:
        d["gateway"]["state_dir"] = str(state("state-plain"))

    def mutate_web(d: dict[str, Any]) -> None:
        d["gateway"]["state_dir"] = str(state("state-web"))
        d["web"] = {"listen": f"127.0.0.1:{web_port}", "users_file": str(users)}

    plain = _rig.gateway_config(wd, N_LOAD, name="plain.yaml", mutate=mutate_plain)
    with_web = _rig.gateway_config(wd, N_LOAD, name="web.yaml", mutate=mutate_web)
    w = _rig.Watcher(b.port)
    out: dict[str, Any] = {"settle_s": settle, "load_msg_s": round(load), "load_assets": N_LOAD}
    prefix, chromium = None, CHROMIUM
    if pin:  # the gateway on core 0, the browsers on core 1: as if they ran on the operators' machines
        prefix = ["taskset", "-c", "0"]
        chromium = str(wd / "chromium-core1")
        Path(chromium).write_text(f'#!/bin/sh\nexec taskset -c 1 {CHROMIUM} "$@"\n')
        Path(chromium).chmod(0o755)
    out["pinned"] = pin
    feed = Feed(b.port)
    clock = AlertClock(b.port)
    lg_s = 2 * settle + n * 1.5 + 120
    try:
        gw = _rig.Gateway(plain, b.port, w, wd, argv_prefix=prefix)
        lg = _rig.loadgen(b.port, N_LOAD, load, lg_s, sentinel=False)
        time.sleep(settle)
        out["rss_mb_without_page"] = round(gw.rss_mb(), 1)
        _, mqtt_plain = cycles_of(feed, clock, n)
        out["alert_mqtt_ms_without_page"] = stats(mqtt_plain)
        _rig.stop(lg)
        gw.close()

        gw = _rig.Gateway(with_web, b.port, w, wd, argv_prefix=prefix)
        lg = _rig.loadgen(b.port, N_LOAD, load, lg_s, sentinel=False)
        url = f"http://127.0.0.1:{web_port}/"
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, args=ARGS)
            ctx = browser.new_context()
            page = ctx.new_page()
            page.goto(url)
            page.fill('input[name="username"]', "bench")
            page.fill('input[name="password"]', "bench-pass-1")
            page.press('input[name="password"]', "Enter")
            page.wait_for_selector(f'[data-asset="{_rig.PROBE}"]')
            state = ctx.storage_state()
            for _ in range(4):
                c = browser.new_context(storage_state=state)
                pg = c.new_page()
                pg.goto(url)
                pg.wait_for_selector("[data-asset]")
            time.sleep(settle)
            out["rss_mb_with_5_pages"] = round(gw.rss_mb(), 1)
            dom, mqtt_web = cycles_of(feed, clock, n, page)
            out["alert_dom_ms"] = stats(dom)
            out["alert_mqtt_ms_with_5_pages"] = stats(mqtt_web)

            firsts = []  # navigation start -> every tile with values, from a cold context (the cookie only)
            for _ in range(5):
                c = browser.new_context(storage_state=state)
                pg = c.new_page()
                pg.goto(url, wait_until="commit")
                pg.wait_for_function(
                    "() => { const t = document.querySelectorAll('[data-asset]'); return t.length > 0 && "
                    "[...t].every(e => { const v = e.querySelector('.vals dd'); return v && !v.textContent.startsWith('–'); }); }"
                )
                firsts.append(pg.evaluate("performance.now()"))
                c.close()
            out["first_values_ms"] = {"median": round(statistics.median(firsts), 1), "max": round(max(firsts), 1)}
            sizes = page.evaluate(
                "performance.getEntriesByType('resource').concat(performance.getEntriesByType('navigation'))"
                ".filter(e => !e.name.includes('/api/')).map(e => [e.name, e.encodedBodySize])"
            )
            out["page_kb"] = round(sum(s for _, s in sizes) / 1024, 1)
            out["page_files"] = {n.rsplit("/", 1)[-1] or "index": s for n, s in sizes}
            time.sleep(settle)
            out["rss_mb_with_5_pages_later"] = round(gw.rss_mb(), 1)
            browser.close()
        _rig.stop(lg)
        gw.close()
    finally:
        clock.close()
        feed.close()
        w.close()
        b.stop()
    out["page_adds_mb"] = round(out["rss_mb_with_5_pages"] - out["rss_mb_without_page"], 1)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="shorter settling and fewer cycles")
    ap.add_argument("--load", type=float, help="background msg/s (default: 10 %% of ingest.json's max sustained rate)")
    ap.add_argument("--pin", action="store_true", help="gateway on core 0, the browsers on core 1")
    args = ap.parse_args()
    from bench_latency import default_rate

    r = run(args.quick, args.load if args.load is not None else 0.1 * default_rate(), args.pin)
    print(f"background load            {r['load_msg_s']} msg/s over {r['load_assets']} pumps")
    print(f"RSS without the page       {r['rss_mb_without_page']:7.1f} MB")
    print(f"RSS with 5 pages open      {r['rss_mb_with_5_pages']:7.1f} MB  (+{r['page_adds_mb']} MB; target <= +15 MB)")
    print(f"  {r['settle_s']} s later              {r['rss_mb_with_5_pages_later']:7.1f} MB")
    a = r["alert_dom_ms"]
    print(f"publish -> DOM             p50 {a['p50']} ms  p99 {a['p99']} ms  max {a['max']} ms", end="")
    print(f"  (n={a['n']}; target p50 <= 25, p99 <= 100)")
    for label, key in (("without the page", "alert_mqtt_ms_without_page"), ("with 5 pages open", "alert_mqtt_ms_with_5_pages")):
        m = r[key]
        print(f"publish -> MQTT alert      p50 {m['p50']} ms  p99 {m['p99']} ms  {label}")
    f = r["first_values_ms"]
    print(f"first values after nav     median {f['median']} ms  max {f['max']} ms  (target <= 500)")
    print(f"page weight (gzipped)      {r['page_kb']} KB  (target <= 300 KB)")
    print(f"written to {write('web-pinned' if args.pin else 'web', r)}")


if __name__ == "__main__":
    main()

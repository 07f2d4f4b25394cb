"""Per-asset state, `ingest()`, hop scheduling, alarm lifecycle: the protocol-free core.

`ingest()` runs once per value and stays cheap: the signal's current hop bucket takes the value
into a few running sums (plain floats; no sample is kept), the signal's threshold rule runs (an
alarm waits for no hop), rollup accumulators. When a value opens a new bucket, the finished one
is written to the profile's bucket store and added to the signal's segment totals
(`window.py`), once per signal per bucket. When an asset crosses its next hop boundary (event
time) it is marked due; `run_hops()` then combines the windows' parts into features for all due
assets of a profile at once and scores them with the profile's models in one call.
"""

from __future__ import annotations

import math
import time
from array import array
from collections.abc import Callable
from operator import attrgetter
from typing import Any

import numpy as np

from edgegw.config import GatewayConfig, Profile
from edgegw.engine import text, window
from edgegw.engine.features import N_FEATURES, feature_names, window_features
from edgegw.engine.forecast import forecasts
from edgegw.engine.modelmeta import MODEL_KINDS, OFF_HOPS, ON_HOPS
from edgegw.engine.models import ModelSet, Scores, Verdict
from edgegw.engine.pump import DERIVED, PUMP_KINDS, banks
from edgegw.engine.rules import LEVEL_NAMES, Debounce, DebounceSet, ThresholdRule, severity_of
from edgegw.records import Alert, AlertState, HopResult, Quality, Rollup, Severity, SignalStats

AlertSink = Callable[[Alert], None]
_BAD = Quality.BAD  # per reading: looking a member up on an Enum class costs ~0.25 us in Python 3.11
START_GRACE_S = 30.0  # a signal not heard since the start gets this much longer before it is stale
HopObserver = Callable[[str, list[str], np.ndarray, np.ndarray, list[list[Verdict]] | None], None]


class SignalState:
    """One signal of one asset: its window row (`window.SignalBuckets`), alarm state and rollup stats."""

    __slots__ = (
        "buckets",
        "last_seen",
        "last_ts",
        "last_value_ts",
        "name",
        "quality",
        "range_hi",
        "range_lo",
        "rule",
        "stale",
        "stats",
        "threshold",
    )

    def __init__(self, name: str, spec: Any, win: window.Windows, row: int, now: float) -> None:
        self.name = name
        self.buckets = window.SignalBuckets(win, row)
        self.last_value_ts = -math.inf  # the newest accepted value's time (last_ts counts bad ones too)
        self.rule = ThresholdRule(spec)
        self.threshold = Debounce(spec.on_delay_s, spec.off_delay_s)
        self.quality = Debounce(spec.on_delay_s, spec.off_delay_s)
        lo_hi: tuple[float, float] = spec.range if spec.range else (-math.inf, math.inf)
        self.range_lo, self.range_hi = lo_hi
        self.last_ts = -math.inf
        self.last_seen = now  # wall clock; a never-seen signal goes stale after stale_after_s
        self.stale = False
        self.stats = SignalStats()

    @property
    def last_value(self) -> float:
        """The newest accepted value (NaN before the first)."""
        return self.buckets.last


class AssetState:
    __slots__ = (
        "alarms_raised",
        "due",
        "first_ts",
        "id",
        "index",
        "next_hop",
        "next_k",
        "profile",
        "profile_name",
        "ps",
        "signal_list",
        "signal_names",
        "signals",
    )

    def __init__(self, asset_id: str, profile_name: str, profile: Profile, ps: ProfileState, index: int, now: float) -> None:
        self.id = asset_id
        self.ps = ps
        self.profile_name = profile_name
        self.profile = profile
        self.index = index  # within its profile: its signals are store rows index * n_signals + j
        self.signal_names = list(profile.signals)
        ns = len(self.signal_names)
        self.signal_list = [SignalState(n, s, ps.win, index * ns + j, now) for j, (n, s) in enumerate(profile.signals.items())]
        self.signals = {s.name: s for s in self.signal_list}
        self.next_hop = -math.inf  # set by the first reading
        self.next_k = 0
        self.first_ts = math.inf
        self.due = False
        self.alarms_raised = 0
        ps.assets.append(self)
        ps.asset_ids.append(asset_id)


class ProfileState:
    """What a hop reads for the assets of one profile, by asset index: the due window's end bucket
    (the window is buckets [hop_k - B, hop_k), ending at hop_k * hop_s), the first reading, the
    model alarms (a DebounceSet per kind; delays come from the profile or the model serving it on
    each hop, see model_delays) and the anomaly scores of the rollup interval. For `HopResult`:
    the first bucket not emitted yet per asset, and per store row the bad values counted (in
    `ingest`'s bad path only) and those already handed out."""

    __slots__ = (
        "asset_ids",
        "assets",
        "bad",
        "bad_sent",
        "emit_k",
        "feature_names",
        "first_ts",
        "hop_k",
        "model_alarms",
        "n_signals",
        "raw",
        "score_max",
        "score_n",
        "score_sum",
        "signal_names",
        "win",
    )

    def __init__(self, profile: Profile, n_assets: int) -> None:
        self.n_signals = len(profile.signals)
        self.win = window.Windows(n_assets * self.n_signals, window.n_buckets(profile.window_s, profile.hop_s), profile.hop_s)
        self.assets: list[AssetState] = []  # by index
        self.hop_k = np.zeros(n_assets)
        self.first_ts = np.full(n_assets, math.inf)
        self.model_alarms = {kind: DebounceSet(n_assets) for kind in MODEL_KINDS}
        self.score_max = np.full(n_assets, -math.inf)
        self.score_sum = np.zeros(n_assets)
        self.score_n = np.zeros(n_assets)
        self.asset_ids: list[str] = []  # by index, as assets
        self.signal_names = list(profile.signals)
        self.feature_names = feature_names(self.signal_names)
        self.emit_k = np.full(n_assets, -math.inf)  # buckets below this were emitted in a HopResult
        self.bad = np.zeros(n_assets * self.n_signals)  # bad values per store row, ever
        self.bad_sent = np.zeros(n_assets * self.n_signals)  # of those, already in a HopResult
        self.raw: array | None = None  # ts, value, row of every accepted reading, when kept (Engine.keep_raw)


class Engine:
    """Turns readings into alerts and rollups. Not thread-safe; lives on the event loop."""

    def __init__(
        self,
        cfg: GatewayConfig,
        emit: AlertSink,
        models: dict[str, ModelSet] | None = None,
        clock: Callable[[], float] = time.time,
        future_slack_s: float = math.inf,
    ) -> None:
        """`future_slack_s`: live, a reading more than this ahead of both the wall clock and its
        signal's last event time takes the arrival time instead (see `ingest`); replays keep inf."""
        self._emit = emit
        self._clock = clock
        self._slack = future_slack_s
        self.clamped_future = 0
        self.on_future: Callable[[str, str, float, float], None] | None = None  # (asset, signal, ts, taken as)
        self.models: dict[str, ModelSet] = dict(models or {})
        now = clock()
        self.profiles = cfg.profiles
        members: dict[str, list[str]] = {}
        for a in cfg.assets:
            members.setdefault(a.profile, []).append(a.id)
        self._ps: dict[str, ProfileState] = {name: ProfileState(self.profiles[name], len(ids)) for name, ids in members.items()}
        self._windows = {name: ps.win for name, ps in self._ps.items()}
        self.assets: dict[str, AssetState] = {
            a.id: AssetState(a.id, a.profile, cfg.profiles[a.profile], self._ps[a.profile], members[a.profile].index(a.id), now)
            for a in cfg.assets
        }
        self._due: list[AssetState] = []
        self._pumps = banks(cfg, members)  # profile -> its pumps' derived signals and alarms
        self._forecasts = forecasts(cfg, members)  # profile -> time to each limit
        self.readings_in = 0
        self.rejected: dict[str, int] = {}
        self.hops = 0
        self.windows_skipped = 0
        self.hop_observer: HopObserver | None = None
        self.every_hop = False  # live: a backlog's every hop runs (see ingest); replays run their own
        self.asset_models: dict[str, ModelSet] = {}  # learned on the gateway: an asset's own model (learn/)
        self.on_hop: Callable[[HopResult], None] | None = None  # the gateway's fan-out of each hop
        self.hop_seconds: list[float] = []  # recent hop durations, for self-metrics

    # ------------------------------------------------------------------ hot path

    def reject(self, reason: str, n: int = 1) -> None:
        self.rejected[reason] = self.rejected.get(reason, 0) + n

    def ingest(self, asset: str, signal: str, ts: float, value: float, quality: Quality = Quality.GOOD) -> None:
        """Take one value. Never raises for bad data: it is counted and dropped."""
        a = self.assets.get(asset)
        if a is None:
            self.reject("unknown_asset")
            return
        s = a.signals.get(signal)
        if s is None:
            self.reject("unknown_signal")
            return
        now = self._clock()
        if ts > s.last_ts + self._slack and ts > now + self._slack:
            # One bad device clock must not move the signal's clock ahead and make every later
            # reading out of order: the value counts, at its arrival (never before the last one).
            stamped, ts = ts, (now if now > s.last_ts else s.last_ts)
            self.clamped_future += 1
            if self.on_future is not None:
                self.on_future(asset, signal, stamped, ts)
        elif ts < s.last_ts:
            self.reject("out_of_order")
            return
        s.last_ts = ts
        s.last_seen = now
        if s.stale:
            s.stale = False
            self._transition(a, "stale", signal, 0, ts, {"signal": signal})
        bad = quality == _BAD or not (s.range_lo <= value <= s.range_hi)  # NaN fails both
        qd = s.quality
        q = qd.update(ts, 1 if bad else 0) if bad or qd.active or qd.since is not None else None  # else a no-op
        if q is not None:
            self._transition(a, "quality", signal, q, ts, {"signal": signal, "value": _num(value), "range": _range(s)})
        if bad:
            self.reject("bad_value")
            a.ps.bad[s.buckets.row] += 1.0  # the bucket's quality, for history
            return
        self.readings_in += 1
        b = s.buckets
        if ts >= b.end:
            b.open(ts, value)  # once per bucket: stores the finished one
        else:  # into the open bucket (window.SignalBuckets), inline: a call would cost ~5% of ingest
            d = value - b.first
            t = ts - b.start
            d2 = d * d
            b.count += 1.0
            b.sum_d += d
            b.sum_d2 += d2
            b.sum_d3 += d2 * d
            b.sum_d4 += d2 * d2
            b.sum_t += t
            b.sum_t2 += t * t
            b.sum_td += t * d
            if value < b.min:
                b.min = value
            elif value > b.max:
                b.max = value
            b.last = value
        s.last_value_ts = ts
        raw = a.ps.raw
        if raw is not None:  # history's raw readings (off by default): three floats, no object
            raw.append(ts)
            raw.append(value)
            raw.append(b.row)
        s.stats.add(ts, value)
        rule = s.rule
        if rule.active:
            db = s.threshold
            prev = db.active
            lvl = db.update(ts, rule.target(value, prev))
            if lvl is not None:
                self._threshold_alert(a, s, lvl, prev, ts, value)
        if ts < a.first_ts:
            a.first_ts = a.ps.first_ts[a.index] = ts
        if ts >= a.next_hop:
            if a.due and self.every_hop:  # a backlog crossed another boundary before the due hop
                self.run_hops()  # ran: run it now, so uploaded history gets every window, as live
            if a.next_hop != -math.inf:
                a.ps.hop_k[a.index] = a.next_k
                if not a.due:
                    a.due = True
                    self._due.append(a)
            hop = a.profile.hop_s
            k = window.bucket_of(ts, hop) + 1
            a.next_k = k
            a.next_hop = k * hop

    def keep_raw(self, on: bool = True) -> None:
        """Hand every accepted reading to on_hop (HopResult.raw), for history's optional raw tier."""
        for ps in self._ps.values():
            ps.raw = array("d") if on else None

    # ------------------------------------------------------------------ alarms

    def _threshold_alert(self, a: AssetState, s: SignalState, lvl: int, prev: int, ts: float, value: float) -> None:
        shown = lvl or prev  # a clear reports the limit it fell back under
        ev: dict[str, Any] = {
            "signal": s.name,
            "value": value,
            "unit": s.rule.unit,
            "limit": s.rule.limit(shown),
            "level": LEVEL_NAMES[shown],
        }
        self._transition(a, "threshold", s.name, lvl, ts, ev)

    def _transition(self, a: AssetState, kind: str, source: str, level: int, ts: float, ev: dict[str, Any]) -> None:
        if level:
            severity = severity_of(level) if kind == "threshold" else _KIND_SEVERITY.get(kind, Severity.WARNING)
            a.alarms_raised += 1
            msg = text.raised(kind, source, ev, a.profile.signals)
            alert = Alert(a.id, kind, source, AlertState.RAISED, severity, ts, ev, msg)
        else:
            msg = text.cleared(kind, source, ev, a.profile.signals)
            alert = Alert(a.id, kind, source, AlertState.CLEARED, Severity.INFO, ts, ev, msg)
        self._emit(alert)

    def prepare(self) -> None:
        """Window upkeep between hops (once per window per profile, off the alert path): see
        window.Windows.prepare. Hops stay correct without it, only slower at a segment's start."""
        for win in self._windows.values():
            win.prepare()

    def tick(self, now: float | None = None) -> None:
        """Wall-clock checks (stale signals). Call about once a second. A signal never heard since
        the start waits START_GRACE_S longer: after a restart, devices and sessions reconnect."""
        now = self._clock() if now is None else now
        for a in self.assets.values():
            stale_after = a.profile.stale_after_s
            for s in a.signals.values():
                if not s.stale and now - s.last_seen > (stale_after if s.last_ts != -math.inf else stale_after + START_GRACE_S):
                    s.stale = True
                    ev = {"signal": s.name, "silent_s": round(now - s.last_seen, 1), "limit": stale_after}
                    self._transition(a, "stale", s.name, 1, now, ev)

    def retune(self) -> None:
        """The profiles' signal settings were replaced in place (a config reload): each signal takes
        its new limits, delays and range, keeping its window, alarm level and pending change."""
        for a in self.assets.values():
            for s in a.signal_list:
                spec = a.profile.signals[s.name]
                s.rule = ThresholdRule(spec)
                for db in (s.threshold, s.quality):
                    db.on_delay, db.off_delay = spec.on_delay_s, spec.off_delay_s
                s.range_lo, s.range_hi = spec.range if spec.range else (-math.inf, math.inf)

    def clock_stepped(self, delta: float) -> None:
        """The wall clock jumped by `delta` seconds (see wallclock.py). Stale timers move with it.
        Event time may now continue on either side of each signal's last reading: each signal
        takes its next reading whatever its time, its window starts again (models warm up one
        window) and a pending alarm delay starts again; active alarms stay."""
        for ps in self._ps.values():
            win = ps.win
            for a in ps.assets:
                rows = [s.buckets.row for s in a.signal_list]
                win.acc[:, :, rows] = window.EMPTY[:, None, None]
                win.kcur[rows] = window.NEVER
                win.tail_ok[rows] = False
                win.head[:, rows] = window.EMPTY[:, None]
                for s in a.signal_list:
                    s.buckets = window.SignalBuckets(win, s.buckets.row)
                    s.last_ts = -math.inf
                    s.last_seen += delta
                    s.threshold.since = s.quality.since = None
                a.next_hop, a.next_k, a.first_ts = -math.inf, 0, math.inf
                ps.first_ts[a.index] = math.inf
            for alarms in ps.model_alarms.values():
                for db in alarms.alarms:
                    db.since = None
                alarms.pending[:] = False

    def restore(self, asset: str, kind: str, source: str, level: int = 1) -> bool:
        """Seed an alarm that was active before a restart (from retained state), so it clears normally."""
        a = self.assets.get(asset)
        if a is None:
            return False
        if kind == "threshold" and source in DERIVED:  # a limit on a derived pump signal
            bank = self._pumps.get(a.profile_name)
            return bank is not None and bank.restore_limit(a.index, source, level)
        if kind in ("threshold", "quality", "stale"):
            s = a.signals.get(source)
            if s is None:
                return False
            if kind == "threshold":
                s.threshold.active = level
            elif kind == "quality":
                s.quality.active = 1
            else:
                s.stale = True
            return True
        if kind == "forecast":
            fcs = self._forecasts.get(a.profile_name)
            return fcs is not None and fcs.restore_alarm(asset, source)
        if kind in PUMP_KINDS:
            bank = self._pumps.get(a.profile_name)
            return bank is not None and bank.restore_alarm(a.index, kind)
        alarms = a.ps.model_alarms.get(kind)
        if alarms is None:
            return False
        alarms.restore(a.index)
        return True

    def owns(self, asset: str, kind: str, source: str) -> str | None:
        """Why the engine still watches this alarm's condition (it will clear the alarm itself), or
        None where it cannot: the signal (or, for a model alarm, every signal) is silent, or the
        alarm is not the engine's. A clear by command is refused while this says why."""
        a = self.assets.get(asset)
        if a is None:
            return None
        now = self._clock()
        heard = [s for s in a.signal_list if s.last_ts != -math.inf and now - s.last_seen <= a.profile.stale_after_s]
        if kind in ("threshold", "quality", "stale"):
            s = a.signals.get(source)
            if s is None:
                return None
            if kind == "stale":
                return f"{asset} {source} is silent; the alarm clears when it reports again (or shelve it)"
            if s in heard:
                return f"{asset} {source} is reporting; the alarm clears when its value is back to normal"
            return None
        if kind in a.ps.model_alarms and heard:
            return f"{asset} is reporting and its model judges it every hop; the alarm clears when it looks normal"
        return None

    def reset_alarm(self, asset: str, kind: str, source: str) -> None:
        """Forget an alarm's state (cleared by command, or re-armed once its link is back): a
        condition still there raises it anew, a silent signal after stale_after_s from now."""
        a = self.assets.get(asset)
        if a is None:
            return
        s = a.signals.get(source)
        if kind == "threshold" and s is not None:
            s.threshold = Debounce(s.threshold.on_delay, s.threshold.off_delay)
        elif kind == "quality" and s is not None:
            s.quality = Debounce(s.quality.on_delay, s.quality.off_delay)
        elif kind == "stale" and s is not None:
            s.stale = False
            s.last_seen = self._clock()
        elif kind in a.ps.model_alarms:
            alarms = a.ps.model_alarms[kind]
            alarms.alarms[a.index].active = 0
            alarms.alarms[a.index].since = None
            alarms.active[a.index] = alarms.pending[a.index] = False

    # ------------------------------------------------------------------ hops

    @property
    def due(self) -> bool:
        return bool(self._due)

    def run_hops(self) -> None:
        """Features and models for every due asset, batched per profile."""
        if not self._due:
            return
        due, self._due = self._due, []
        by_profile: dict[str, list[AssetState]] = {}
        for a in due:
            a.due = False
            by_profile.setdefault(a.profile_name, []).append(a)
        for pname, assets in by_profile.items():
            t0 = time.perf_counter()
            self._hop(pname, assets)
            self.hop_seconds.append(time.perf_counter() - t0)
            if len(self.hop_seconds) > 1024:
                del self.hop_seconds[:512]

    def _hop(self, pname: str, assets: list[AssetState]) -> None:
        """Features for the due assets of one profile, their models, their alarms.

        A signal's open bucket inside the window is stored as it is now (values that still come
        for it are stored when it closes, for later hops); `window_features` does the rest.
        """
        ps = self._ps[pname]
        win = ps.win
        ns = ps.n_signals
        na = len(assets)
        if na == len(ps.assets):  # all of the profile's assets (the usual hop)
            assets = ps.assets
            aidx: Any = slice(None)
            rows = np.arange(na * ns)
        else:
            assets.sort(key=_index)
            aidx = np.array([a.index for a in assets])
            rows = (aidx * ns).repeat(ns) + np.tile(np.arange(ns), na)
        profile = self.profiles[pname]
        k_end = ps.hop_k[aidx]
        ends = k_end * profile.hop_s  # as ingest computed next_hop
        k_rows = k_end.repeat(ns)
        kc = win.kcur[rows]
        inside = (kc < k_rows) & (kc >= k_rows - win.n_buckets)
        if inside.any():  # open buckets of the window, stored in one assignment (per row it costs ~3x)
            r = rows[inside]
            sig = win.signals
            win.acc[:, kc[inside].astype(np.intp) % win.n_buckets, r] = np.array([sig[i].record() for i in r.tolist()]).T
        bank = self._pumps.get(pname)
        if bank is not None:  # pump performance (engine/pump.py) from the hop buckets just stored
            bank.hop(win, aidx, k_end, ends, self._pump_alarm)
        x = window_features(win, rows, k_rows).reshape(na, ns * N_FEATURES)
        if win.uses_parts(len(rows)):  # the next hop's window ends a bucket later: prepare() builds its tails
            win.next_k_end = float(k_end.max()) + 1.0
        self.hops += na
        model = self.models.get(pname)
        verdicts: list[list[Verdict]] | None = None
        sc: Scores | None = None
        idx = np.zeros(0, dtype=np.intp)
        if model is not None:
            ok = (ends - ps.first_ts[aidx] >= profile.window_s - profile.hop_s) & ~np.isnan(x).any(axis=1)
            idx = np.flatnonzero(ok)
            self.windows_skipped += na - len(idx)
            sc = model.score(x[idx].astype(np.float32)) if len(idx) else None
            if sc is not None:
                delays = model_delays(profile, model)
                self._model_alarms(ps, rows[::ns][idx] // ns, ends[idx], sc, model, delays)
            if self.hop_observer is not None:  # verdict objects only for those who read them
                verdicts = [[] for _ in assets]
                for k, row in zip(idx.tolist(), sc.verdicts() if sc is not None else [], strict=True):
                    verdicts[k] = row
        own = self._own_models(ps, profile, assets, ends, x) if self.asset_models else None
        if self.hop_observer is not None:
            self.hop_observer(pname, [a.id for a in assets], ends, x, verdicts)
        if self.on_hop is not None:
            result = self._hop_result(pname, ps, assets, aidx, rows, k_end, x, model, sc, idx)
            if bank is not None:  # the derived pump signals as columns of their own (history, the page)
                bank.extend(result, aidx)
            self.on_hop(_with_own(result, own) if own else result)

    def _hop_result(
        self,
        pname: str,
        ps: ProfileState,
        assets: list[AssetState],
        aidx: Any,
        rows: np.ndarray,
        k_end: np.ndarray,
        x: np.ndarray,
        model: ModelSet | None,
        sc: Scores | None,
        idx: np.ndarray,
    ) -> HopResult:
        """The hop as a HopResult: scores by asset and the buckets each asset finished since its
        last one, read from the store (see HopResult). A burst (a backlog crossing many buckets
        between hops) yields every finished bucket still in the store; a bucket whose slot a newer
        one took is gone. The usual hop, one bucket per asset, costs a fixed few numpy calls."""
        win = ps.win
        ns = ps.n_signals
        na = len(assets)
        hop = win.hop_s
        nb = win.n_buckets
        whole = isinstance(aidx, slice)
        start = np.maximum(ps.emit_k[aidx], k_end - nb)
        ps.emit_k[aidx] = k_end
        span = k_end - start
        if whole and na and span.min() == span.max() == 1 and k_end.min() == k_end.max():
            kp, ip = start, np.arange(na)  # the usual hop: one bucket, one slot for all
            g = win.acc[_EMIT_FIELDS, int(start[0] % nb)].reshape(len(_EMIT_FIELDS), na, ns)
        else:
            m = int(span.max()) if na else 0
            ks = start[:, None] + np.arange(max(m, 0))
            flat = np.flatnonzero((ks < k_end[:, None]).ravel())
            kp, ip = ks.ravel()[flat], flat // max(m, 1)
            a_i = np.arange(na) if whole else aidx
            r2 = (a_i[ip] * ns)[:, None] + np.arange(ns)  # (P, ns) store rows
            g = win.acc[_EMIT_FIELDS[:, None, None], (kp % nb).astype(np.intp)[None, :, None], r2[None]]
        n = np.where(g[3] == kp[:, None], g[0], 0.0)  # a slot holding another bucket: no values
        bad = np.zeros((len(kp), ns))
        d = ps.bad[rows] - ps.bad_sent[rows]
        if len(kp) and d.any():  # bad values since the asset's last bucket go with its newest bucket
            newest = np.flatnonzero(np.append(ip[1:] != ip[:-1], True))
            bad[newest] = d.reshape(na, ns)[ip[newest]]
            sent = rows[((ip[newest] * ns)[:, None] + np.arange(ns)).ravel()]  # an asset without a bucket keeps its count
            ps.bad_sent[sent] = ps.bad[sent]
        have = n > 0
        if not have.all():
            keep = have.any(axis=1) | (bad > 0).any(axis=1)
            kp, ip, g, n, have, bad = kp[keep], ip[keep], g[:, keep], n[keep], have[keep], bad[keep]
        out = np.empty((5, len(kp), ns))
        out[0] = n
        np.divide(g[2], n, out=out[1], where=have)
        out[1] += g[1]
        out[2:] = g[4:]
        if not have.all():
            out[1:, ~have] = np.nan
        sig = win.signals if whole else [win.signals[r] for r in rows.tolist()]
        res = HopResult(
            profile=pname,
            assets=ps.asset_ids if whole else [a.id for a in assets],
            ends=k_end * hop,
            hop_s=hop,
            signals=ps.signal_names,
            features=x,
            feature_names=ps.feature_names,
            last=np.fromiter(map(_LAST, sig), float, len(rows)).reshape(na, ns),
            bucket_asset=ip,
            bucket_starts=kp * hop,
            buckets=out,
            bucket_bad=bad,
        )
        if ps.raw is not None and len(ps.raw):
            res.raw, res.raw_assets = np.frombuffer(ps.raw, dtype=np.float64).reshape(-1, 3).copy(), ps.asset_ids
            del ps.raw[:]
        judged = np.zeros(na, dtype=bool)
        anomaly = np.full(na, math.nan)
        risk = np.full(na, math.nan)
        cause = [""] * na
        if model is not None and sc is not None:
            j = idx[sc.judged]
            judged[j] = True
            anomaly[j] = sc.anomaly[sc.judged]
            if sc.risk is not None:
                risk[j] = sc.risk[sc.judged]
                for r, c in sc.causes().items():
                    cause[int(idx[r])] = c
        res.judged, res.anomaly, res.risk, res.cause = judged, anomaly, risk, cause
        if model is not None:
            res.threshold = np.where(judged, float(getattr(model, "threshold", math.nan)), math.nan)
            res.model_version = model.version
        return res

    def _own_models(
        self, ps: ProfileState, profile: Profile, assets: list[AssetState], ends: np.ndarray, x: np.ndarray
    ) -> list[tuple[int, Scores]]:
        """Assets with a model of their own (learned on the gateway) are judged by it, a call each;
        an asset without one runs thresholds only (its profile's model, if any, judged it above).
        Returns (row, scores) per judged asset, for the hop's result."""
        out = []
        for k, a in enumerate(assets):
            m = self.asset_models.get(a.id)
            if m is None:
                continue
            if ends[k] - ps.first_ts[a.index] < profile.window_s - profile.hop_s or np.isnan(x[k]).any():
                self.windows_skipped += 1
                continue
            sc = m.score(x[k : k + 1].astype(np.float32))
            self._model_alarms(ps, np.array([a.index]), ends[k : k + 1], sc, m, model_delays(profile, m))
            out.append((k, sc))
        return out

    def _model_alarms(
        self,
        ps: ProfileState,
        index: np.ndarray,
        ends: np.ndarray,
        sc: Scores,
        model: ModelSet,
        delays: tuple[float, float],
    ) -> None:
        """One hop's scores (row r: the asset of index[r], its window ending at ends[r]) into the
        rollup accumulators and the model alarms: Python objects only for the rows whose condition
        differs from their alarm or whose change was pending."""
        judged = np.flatnonzero(sc.judged)
        ai = index[judged]
        score = sc.anomaly[judged]
        ps.score_sum[ai] += score
        ps.score_n[ai] += 1.0
        ps.score_max[ai] = np.maximum(ps.score_max[ai], score)
        for kind, cond in (("anomaly", sc.hot), ("failure_risk", sc.risk_hot)):
            if cond is None:
                continue
            alarms = ps.model_alarms[kind]
            hot = cond[judged]
            for j in alarms.changing(ai, hot).tolist():
                r = int(judged[j])
                lvl = alarms.update(int(ai[j]), float(ends[r]), int(hot[j]), delays)
                if lvl is not None:
                    self._model_alarm(ps.assets[ai[j]], lvl, sc, r, kind, model, float(ends[r]))

    def _model_alarm(self, a: AssetState, lvl: int, sc: Scores, j: int, kind: str, model: ModelSet, ts: float) -> None:
        """A model alarm of score row j (window ending at ts) raised (lvl 1) or cleared (0)."""
        v = sc.verdict(j, kind)
        ev = {"score": v.score, "threshold": v.threshold, "model": model.name, "model_version": model.version}
        ev.update(v.evidence)
        if lvl:
            msg = text.raised(v.kind, model.name, ev, a.profile.signals)
            alert = Alert(a.id, v.kind, model.name, AlertState.RAISED, v.severity, ts, ev, msg)
            a.alarms_raised += 1
        else:
            msg = text.cleared(v.kind, model.name, ev, a.profile.signals)
            alert = Alert(a.id, v.kind, model.name, AlertState.CLEARED, Severity.INFO, ts, ev, msg)
        self._emit(alert)

    def _pump_alarm(self, asset: str, kind: str, source: str, level: int, ts: float, ev: dict[str, Any], msg: str) -> None:
        """A pump alarm's transition (engine/pump.py words it)."""
        a = self.assets[asset]
        if level:
            sev = severity_of(level) if kind == "threshold" else _KIND_SEVERITY.get(kind, Severity.WARNING)
            a.alarms_raised += 1
            self._emit(Alert(a.id, kind, source, AlertState.RAISED, sev, ts, ev, msg))
        else:
            self._emit(Alert(a.id, kind, source, AlertState.CLEARED, Severity.INFO, ts, ev, msg or f"{kind} {source} cleared"))

    def pump_totals(self) -> dict[str, dict[str, float]]:
        """Energy, volume, run hours, starts and region hours per asset with a pump, to save."""
        return {aid: t for bank in self._pumps.values() for aid, t in bank.totals_of().items()}

    def restore_pump_totals(self, saved: dict[str, dict[str, float]]) -> int:
        """Totals saved before a restart (see pump_totals); returns the assets that took theirs."""
        return sum(bank.restore(saved) for bank in self._pumps.values())

    def forecast_rows(self) -> list[tuple[str, str, float, int]]:
        """(asset, signal, resolution_s, points) of every forecast series, to seed from history."""
        return [(r[0], r[1], fc.spec.resolution_s, fc.spec.points) for fc in self._forecasts.values() for r in fc.rows]

    def seed_forecast(self, asset: str, signal: str, times: np.ndarray, means: np.ndarray) -> int:
        """Trend points kept before a restart (see ProfileForecasts.seed)."""
        a = self.assets.get(asset)
        fc = self._forecasts.get(a.profile_name) if a is not None else None
        return fc.seed(asset, signal, times, means) if fc is not None else 0

    def feature_names(self, profile: str) -> list[str]:
        return feature_names(list(self.profiles[profile].signals))

    # ------------------------------------------------------------------ rollups

    def take_rollups(self, start: float, end: float) -> list[Rollup]:
        """Aggregates since the last call, one Rollup per asset; accumulators start afresh."""
        out = []
        shown = {name: _shown(p) for name, p in self.profiles.items()}
        for a in self.assets.values():
            stats = {}
            for s in a.signals.values():
                stats[s.name], s.stats = s.stats, SignalStats()
            ps, i = a.ps, a.index
            n = ps.score_n[i]
            raised, a.alarms_raised = a.alarms_raised, 0
            bank = self._pumps.get(a.profile_name)
            derived = bank.rollup(i) if bank is not None else None
            if derived is not None:  # the pump's derived signals join the measured ones
                stats.update(derived[0])
            fc = self._forecasts.get(a.profile_name)
            if fc is not None:
                fc.add_rollup(a.id, stats)
            out.append(
                Rollup(
                    a.id,
                    start,
                    end,
                    stats,
                    anomaly_max=float(ps.score_max[i]) if n else None,
                    anomaly_mean=float(ps.score_sum[i] / n) if n else None,
                    alarms_raised=raised,
                    units=shown[a.profile_name][0],
                    decimals=shown[a.profile_name][1],
                )
            )
            if derived is not None:
                out[-1].pump = derived[1]
        for bank in self._pumps.values():
            bank.reset()
        if self._forecasts:  # at most once per forecast.every_s; each rollup carries the latest
            for fc in self._forecasts.values():
                fc.run(end, self._pump_alarm)
            for r in out:
                fc = self._forecasts.get(self.assets[r.asset].profile_name)
                r.forecast = fc.of(r.asset) if fc is not None else None
        for ps in self._ps.values():
            ps.score_max.fill(-math.inf)
            ps.score_sum.fill(0.0)
            ps.score_n.fill(0.0)
        return out


def model_delays(profile: Profile, model: ModelSet) -> tuple[float, float]:
    """(on, off) delay in seconds of a profile's model alarms: the profile's when it sets them, else
    the model's (trained for its hop), else ON_HOPS / OFF_HOPS hops."""
    ma = profile.model_alarms
    own = getattr(model, "delays", None)
    on, off = own if own is not None else (ON_HOPS * profile.hop_s, OFF_HOPS * profile.hop_s)
    return (on if ma.on_delay_s is None else ma.on_delay_s, off if ma.off_delay_s is None else ma.off_delay_s)


_KIND_SEVERITY = {
    "stale": Severity.WARNING,
    "quality": Severity.WARNING,
    "anomaly": Severity.WARNING,
    "failure_risk": Severity.CRITICAL,
    "npsh": Severity.CRITICAL,
    "dry_run": Severity.CRITICAL,
}


def _shown(p: Profile) -> tuple[dict[str, str], dict[str, int]]:
    """A profile's units and resolution decimals per signal, as rollups show them."""
    units = {n: s.unit for n, s in p.signals.items() if s.unit}
    return units, {n: d for n, s in p.signals.items() if (d := text.decimals(s)) is not None}


# store fields a HopResult reads (bucket k's slot may hold another bucket: field K says which)
_EMIT_FIELDS = np.array([window.N, window.C, window.S1, window.K, window.MIN, window.MAX, window.LAST])
_LAST = attrgetter("last")


def _with_own(res: HopResult, own: list[tuple[int, Scores]]) -> HopResult:
    """A hop's result with the scores of the assets judged by their own (learned) model."""
    if res.judged is None or res.anomaly is None:
        return res
    if res.threshold is None:
        res.threshold = np.full(len(res.assets), math.nan)
    for k, sc in own:
        if sc.judged[0]:
            res.judged[k] = True
            res.anomaly[k] = sc.anomaly[0]
            res.threshold[k] = float(getattr(sc.models, "threshold", math.nan))
    return res


def _index(a: AssetState) -> int:
    return a.index


def _num(v: float) -> float | None:
    return v if math.isfinite(v) else None


def _range(s: SignalState) -> list[float] | None:
    return None if s.range_lo == -math.inf and s.range_hi == math.inf else [s.range_lo, s.range_hi]


__all__ = ["AlertSink", "Engine"]

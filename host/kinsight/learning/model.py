"""The learning engine: each resident's own patterns, and what changes in them.

A ``PersonalModel`` learns one resident from one day's features at a time, in
the style of River: ``score_one(x)`` says what, if anything, looks changed on the
day ``x`` (without learning from it), ``learn_one(x)`` then takes the day in. ``x``
is a plain dict: the day's features (see ``features.daily_features``; absent keys
are missing data, never zeros) plus ``"day"`` (ISO date) and ``"weekend"`` (0/1).

How it decides:

* Baselines are robust and personal: per feature, the median and the median
  absolute deviation (MAD) of the last ``window`` days it was learnt from, the
  weekend's own when there are enough weekend days. A value becomes a robust z
  score ``(x - median) / scale`` with ``scale`` at least 1.4826 MAD, a floor in
  the feature's unit, and for counts the Poisson spread ``sqrt(median)``.
* UTI is a count test: each day the Poisson log-likelihood ratio of the toilet
  visits (day ones at ``uti_day_ratio`` times the personal rate, night ones at
  ``uti_night_add`` more a night) against the personal rates, day and night
  summed, less ``uti_k``, runs a CUSUM (in nats, floored at ``-uti_floor``,
  clipped at ``uti_clip`` a day, under ``uti_h``: one busy day is not enough),
  not z scores of small counts.
* After the whole home was silent 2 days or more (away, in hospital) every
  CUSUM starts afresh.
* A condition (dehydration, mobility, sleep) pools the z scores of its
  features (their mean), each signed so that "worse" is positive, and runs a one-sided CUSUM
  on that average, clipped per day so that one odd day can never reach the
  threshold alone. A finding needs the CUSUM over its threshold ``h``.
* Nothing is found in the first ``learning_days`` days with data.
* Baselines are not updated from a feature while any of its conditions has an
  elevated CUSUM (over ``h / 2``), nor from values beyond 5 scales: an unfolding
  change is not absorbed as the new normal. If a condition stays elevated for
  ``rebaseline_days`` the change is accepted as the new normal and learnt.
* After a finding the same condition stays quiet for ``refractory_days``, but for
  a follow-up (``Finding.follow_up``) on each day that is still clearly worse than
  usual on its leading evidence: "Still drinking less: water drawn today 0.6 L
  (usually 1.4 to 2.0 L), the third day running".
* Every finding is for the digest: it is about a day that has ended, and the
  real-time rules are what says "now". Drinking less is said from the water drawn;
  the heart rate only supports it.
* Acute findings on one day: ``inactivity`` (first seen up hours later than
  usual, held when a home with a bed sensor has it seeing under 60 % of the usual
  night: the whole home was silent, a hub outage) and ``prolonged_sitting`` (a
  sitting bout hours longer than usual).
  ``bad_day`` is a poor night followed by a day well below the usual activity.
  ``sleep`` and ``bad_day`` are for the weekly digest (``DIGEST_ONLY``): the
  ``EngineDetector`` does not raise them as proactive alerts.
* A sensor that reported every day and has been silent 2 days while others
  report (or the whole home silent 2 days) gives a ``device`` finding: a job for
  the field team, not a health alert. A silent sensor is never health evidence,
  with one exception, asked for with ``silent_tap_means_dry`` where sensors
  cannot say they are alive (no ``heartbeats``: histories from other systems): a
  tap silent all day while every other usual sensor reports is read as no water
  drawn, and the finding asks to check the sensor too.
* A day with no water drawn at all (a live tap sensor, or the case above), when
  the resident's usual days have at least one draw, is a ``dehydration`` finding
  on the day.

>>> m = PersonalModel(learning_days=3)
>>> m.state
'learning (day 1 of 3)'
>>> for i in range(3):
...     x = {"day": f"2024-05-0{i + 1}", "weekend": 0, "water_ml": 1500.0 + 50 * i}
...     m.score_one(x)
...     m.learn_one(x)
[]
[]
[]
>>> m.state
'watching'
>>> m2 = PersonalModel.from_dict(json.loads(json.dumps(m.to_dict())))
>>> m2.to_dict() == m.to_dict()
True
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from .detector import Alert, condition_words
from .findings import (
    CONDITIONS,
    DIGEST_ONLY,
    FEATURES,
    NON_HEALTH,
    SENSORS,
    STILL,
    WATER_FEATURES,
    Finding,
    fmt,
    ordinal,
    today,
)

__all__ = ["CONDITIONS", "DIGEST_ONLY", "FEATURES", "NON_HEALTH", "SENSORS", "EngineDetector",
           "Finding", "PersonalModel", "state_bytes"]

log = logging.getLogger(__name__)

@dataclass
class _Baseline:
    median: float
    scale: float
    low: float  # 10th percentile
    high: float  # 90th percentile
    top: float  # largest


@dataclass
class _Assessment:
    day: str
    z: dict[str, float]  # feature -> robust z (unsigned direction: + is higher)
    composite: dict[str, float]  # condition -> clipped mean of signed z
    cusum: dict[str, float]  # condition -> CUSUM after today
    findings: list[Finding]
    silent: dict[str, int]  # sensor -> silent run after today
    said: dict[str, list[Any]] = field(default_factory=dict)  # cond -> [feature, value]


def _quantile(s: list[float], q: float) -> float:
    pos = q * (len(s) - 1)
    i = int(pos)
    j = min(i + 1, len(s) - 1)
    return s[i] + (s[j] - s[i]) * (pos - i)


def _num(x: dict[str, Any], key: str) -> float | None:
    v = x.get(key)
    if v is None or isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    v = float(v)
    return v if math.isfinite(v) else None


class PersonalModel:
    """One resident's patterns; see the module's docstring."""

    def __init__(self, learning_days: int = 14, window: int = 42, k: float = 0.5,
                 h: float = 4.0, clip: float = 3.0, mobility_k: float = 0.3,
                 mobility_h: float = 5.0, mobility_clip: float = 2.0, sleep_k: float = 1.0,
                 uti_k: float = 0.25, uti_h: float = 2.0, uti_clip: float = 1.75,
                 uti_day_ratio: float = 1.6, uti_night_add: float = 1.0,
                 uti_floor: float = 2.0,
                 refractory_days: int = 7, rebaseline_days: int = 35,
                 inactivity_min: float = 150.0, sitting_extra_min: float = 180.0,
                 silent_tap_means_dry: bool = False, seed: int = 0):
        self.params: dict[str, Any] = {
            "learning_days": learning_days, "window": window, "k": k, "h": h, "clip": clip,
            "mobility_k": mobility_k, "mobility_h": mobility_h, "mobility_clip": mobility_clip,
            "sleep_k": sleep_k, "uti_k": uti_k, "uti_h": uti_h, "uti_clip": uti_clip,
            "uti_day_ratio": uti_day_ratio, "uti_night_add": uti_night_add, "uti_floor": uti_floor,
            "refractory_days": refractory_days, "rebaseline_days": rebaseline_days,
            "inactivity_min": inactivity_min, "sitting_extra_min": sitting_extra_min,
            "silent_tap_means_dry": silent_tap_means_dry,
            "seed": seed}  # seed: nothing is random yet; kept for reproducible variants
        self.days = 0  # days learnt that had any data
        self.hist: dict[str, list[list[float]]] = {}  # feature -> [[value, weekend], ...]
        self.recent: dict[str, list[float | None]] = {}  # feature -> last 7 days, raw
        self.cusum: dict[str, float] = {}
        self.elevated: dict[str, int] = {}  # condition -> days with the CUSUM elevated
        self.run: dict[str, int] = {}  # condition -> days running worse than usual
        self.last: dict[str, str] = {}  # condition -> ISO day of its last finding
        self.silent: dict[str, int] = {}  # sensor ("home": all) -> days silent
        self.present: dict[str, int] = {}  # sensor -> days it reported
        self.poor_night = False
        self.said: dict[str, list[Any]] = {}  # condition -> [feature, value] last said
        self._cache: _Assessment | None = None

    # --- state

    @property
    def state(self) -> str:
        n = self.params["learning_days"]
        return f"learning (day {self.days + 1} of {n})" if self.days < n else "watching"

    def to_dict(self) -> dict[str, Any]:
        return {"params": dict(self.params), "days": self.days, "hist": self.hist,
                "recent": self.recent, "cusum": self.cusum, "elevated": self.elevated,
                "run": self.run, "last": self.last, "silent": self.silent,
                "present": self.present, "poor_night": self.poor_night, "said": self.said}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PersonalModel:
        m = cls(**d["params"])
        m.days = int(d["days"])
        m.hist = {k: [list(p) for p in v] for k, v in d["hist"].items()}
        m.recent = {k: list(v) for k, v in d["recent"].items()}
        for name in ("cusum", "elevated", "run", "last", "silent", "present"):
            setattr(m, name, dict(d[name]))
        m.poor_night = bool(d["poor_night"])
        m.said = {k: list(v) for k, v in d.get("said", {}).items()}
        return m

    # --- baselines

    def _baseline(self, feature: str, weekend: int) -> _Baseline | None:
        pairs = self.hist.get(feature)
        if not pairs or len(pairs) < 5:
            return None
        same = [p[0] for p in pairs if int(p[1]) == weekend]
        values = sorted(same if len(same) >= 10 else [p[0] for p in pairs])
        med = _quantile(values, 0.5)
        mad = _quantile(sorted(abs(v - med) for v in values), 0.5)
        _, _, floor, count = FEATURES[feature]
        scale = max(1.4826 * mad, floor, math.sqrt(max(med, 1.0)) if count else 0.0)
        return _Baseline(med, scale, _quantile(values, 0.1), _quantile(values, 0.9), values[-1])

    # --- scoring

    def _clean(self, x: dict[str, Any]) -> dict[str, float]:
        feats = {f: v for f in FEATURES if (v := _num(x, f)) is not None}
        if feats.get("water_ml") == 0 and feats.get("draws", 0) > 0:
            del feats["water_ml"]  # a basin or tap sensor without volume: use the draws
        return feats

    def _assess(self, x: dict[str, Any]) -> _Assessment:
        day = str(x.get("day", ""))
        if self._cache is not None and self._cache.day == day and day:
            return self._cache
        p = self.params
        feats = self._clean(x)
        silent = self._silences(feats)
        unsure_tap = self._infer_dry_day(x, feats)
        weekend = int(bool(x.get("weekend", 0)))
        watching = self.days >= p["learning_days"]
        base = {f: b for f in feats if (b := self._baseline(f, weekend)) is not None}
        z = {f: max(-6.0, min(6.0, (feats[f] - b.median) / b.scale)) for f, b in base.items()}
        composite: dict[str, float] = {}
        cusum: dict[str, float] = dict(self.cusum)
        back = self.silent.get("home", 0) >= 2  # home again after days away: start afresh
        for cond, members in CONDITIONS.items():
            k, h, clip = self._cusum_params(cond)
            if cond == "uti":
                llr = self._toilet_llr(feats) if watching else None
                if llr is None:
                    continue
                c = max(-p["uti_floor"], min(clip, llr - k))
            else:
                signed = [sign * z[f] for f, sign in members if f in z]
                if not signed:
                    continue
                c = max(-2.0, min(clip, sum(signed) / len(signed))) - k
            composite[cond] = c + k
            prev = 0.0 if back else self.cusum.get(cond, 0.0)
            cusum[cond] = min(2 * h, max(0.0, prev + c))
        findings: list[Finding] = []
        said: dict[str, list[Any]] = {}
        if watching:
            findings = self._findings(day, feats, base, z, composite, cusum, silent, unsure_tap,
                                      said)
        a = _Assessment(day, z, composite, cusum, findings, silent, said)
        self._cache = a
        return a

    def _infer_dry_day(self, x: dict[str, Any], feats: dict[str, float]) -> bool:
        """With ``silent_tap_means_dry`` (for homes whose sensors cannot say they are
        alive, such as histories from other systems), a tap that reported every day
        and is silent today while every other usual sensor reports is read as no
        water drawn (``draws`` 0): it cannot be told from a failed sensor, so the
        finding says both. True when so."""
        if (not self.params["silent_tap_means_dry"] or x.get("heartbeats")
                or "draws" in feats or not self._expected("tap")):
            return False
        usual = [keys for sensor, keys in SENSORS.items()
                 if sensor != "tap" and self._expected(sensor)]
        if not usual or not all(any(k in feats for k in keys) for keys in usual):
            return False
        feats["draws"] = 0.0
        return True

    def _rate(self, feature: str, floor: float) -> float | None:
        """The personal daily rate of a count: the mean of the learnt days."""
        pairs = self.hist.get(feature)
        if not pairs or len(pairs) < 5:
            return None
        return max(floor, sum(p[0] for p in pairs) / len(pairs))

    def _toilet_llr(self, feats: dict[str, float]) -> float | None:
        """Evidence, in nats, that today's toilet counts come from a raised rate: the
        Poisson log-likelihood ratio of day visits at ``uti_day_ratio`` times the
        personal rate and night visits at ``uti_night_add`` more than it, summed over
        day and night (each only when it has data and a rate)."""
        p = self.params
        total: float | None = None
        for f, floor in (("toilet_day", 1.0), ("toilet_night", 0.3)):
            n = feats.get(f)
            lam0 = self._rate(f, floor)
            if n is None or lam0 is None:
                continue
            lam1 = (lam0 * p["uti_day_ratio"] if f == "toilet_day"
                    else lam0 + p["uti_night_add"])
            total = (total or 0.0) + n * math.log(lam1 / lam0) - (lam1 - lam0)
        return total

    def _cusum_params(self, cond: str) -> tuple[float, float, float]:
        """(k, h, clip) of a condition's CUSUM."""
        p = self.params
        if cond == "mobility":
            return p["mobility_k"], p["mobility_h"], p["mobility_clip"]
        if cond == "uti":
            return p["uti_k"], p["uti_h"], p["uti_clip"]
        return (p["sleep_k"] if cond == "sleep" else p["k"]), p["h"], p["clip"]

    def _silences(self, feats: dict[str, float]) -> dict[str, int]:
        out: dict[str, int] = {}
        if not feats:
            out["home"] = self.silent.get("home", 0) + 1
            return out
        for sensor, keys in SENSORS.items():
            if any(k in feats for k in keys):
                continue
            out[sensor] = self.silent.get(sensor, 0) + 1
        return out

    def _quiet(self, cond: str, day: str) -> bool:
        last = self.last.get(cond)
        if last is None or not day:
            return False
        gap = (date.fromisoformat(day) - date.fromisoformat(last)).days
        return 0 <= gap < self.params["refractory_days"]

    def _series(self, feature: str, today: float | None) -> list[float | None]:
        """The feature's last seven days, oldest first, rounded as they are said (a
        heart rate of 76.2, not 76.16666666666667)."""
        return [None if v is None else round(v, 1)
                for v in [*self.recent.get(feature, [])[-6:], today]]

    def _findings(self, day: str, feats: dict[str, float], base: dict[str, _Baseline],
                  z: dict[str, float], composite: dict[str, float], cusum: dict[str, float],
                  silent: dict[str, int], unsure_tap: bool = False,
                  said: dict[str, list[Any]] | None = None) -> list[Finding]:
        said = said if said is not None else {}
        p = self.params
        out: list[Finding] = []
        b = base.get("draws")
        if (feats.get("draws") == 0 and b is not None and b.low >= 1
                and not self._quiet("dehydration", day)):
            # A whole day without water at home is rare enough to say on the day.
            text = (f"{condition_words('dehydration')}: no water drawn at all today although "
                    f"up and about at home; usually {b.low:.0f} to {b.high:.0f} times a day")
            if unsure_tap:
                text += ("; this tap sensor cannot say it is working, so please check it "
                         "as well")
            # As strong as a CUSUM at its threshold, and more for a resident who draws
            # water often and regularly.
            out.append(Finding("dehydration", "digest", round(p["h"] + b.median / b.scale, 2),
                               text,
                               self._series("draws", 0.0), series_of="draws"))
        for cond, members in CONDITIONS.items():
            h = self._cusum_params(cond)[1]
            s = cusum.get(cond, 0.0)
            if cond in composite and self._quiet(cond, day) and not any(
                    f.condition == cond for f in out):
                follow = self._follow_up(cond, members, feats, base, z, composite[cond], said)
                if follow is not None:
                    out.append(follow)
                continue
            if (cond not in composite or s < h or self._quiet(cond, day)
                    or any(f.condition == cond for f in out)):
                continue
            ranked = sorted(((sign * z[f], f, sign) for f, sign in members if f in z),
                            reverse=True)
            if cond == "dehydration":
                # Drinking less is said from the water; the heart rate only supports it.
                water = [r for r in ranked if r[1] in WATER_FEATURES]
                if not water or water[0][0] < 1.0:
                    continue
                ranked = water + [r for r in ranked if r[1] not in WATER_FEATURES]
            run = self.run.get(cond, 0) + 1
            parts = []
            for zz, f, sign in ranked[:2]:
                if parts and zz < 1.5:
                    break
                b = base[f]
                word = "higher" if sign > 0 else "lower"
                if FEATURES[f][1] == "clock":
                    word = "later" if sign > 0 else "earlier"
                precise = len({fmt(f, feats[f]), fmt(f, b.low), fmt(f, b.high)}) < 3
                low = fmt(f, b.low, precise).removesuffix(" L")
                parts.append(f"{today(f, feats[f], precise)}; usually "
                             f"{low} to {fmt(f, b.high, precise)}; {word} than usual")
            lead = ranked[0][1]
            said[cond] = [lead, feats[lead]]
            text = (f"{condition_words(cond)}: " + "; ".join(parts) +
                    f" (a change building for {run} day{'s' if run != 1 else ''})")
            out.append(Finding(cond, "digest", round(s, 2), text,
                               self._series(lead, feats[lead]), series_of=lead))
        first = feats.get("first_activity_min")
        b = base.get("first_activity_min")
        if first is not None and b is not None and not self._quiet("inactivity", day):
            late = first - b.median
            bed = self._baseline("bed_night_min", 0)
            # The whole home silent (a hub outage) also makes a late "first seen": ask
            # the bed to have seen the night, when this home has a bed sensor.
            held = (bed is not None and self._expected("bed")
                    and feats.get("bed_night_min", 0.0) < 0.6 * bed.median)
            # Later than the resident's own late mornings go, as the real-time rule asks.
            spread = max(0.0, b.high - b.median)
            if late > max(p["inactivity_min"], 4 * b.scale, 90.0 + 1.5 * spread) and not held:
                out.append(Finding(
                    "inactivity", "digest", round(late / b.scale, 2),
                    f"Not seen up and about until {fmt('first_activity_min', first)}; usually "
                    f"up by {fmt('first_activity_min', b.high)} ({late / 60:.1f} h later than "
                    f"usual)", self._series("first_activity_min", first),
                    series_of="first_activity_min"))
        longest = feats.get("sit_longest_min")
        b = base.get("sit_longest_min")
        if longest is not None and b is not None and not self._quiet("prolonged_sitting", day):
            # Hours past the usual long sits, and past the longest one seen (a resampled
            # or unusual day may already hold a sit close to a real emergency).
            if longest > max(b.top + 30.0, b.high + p["sitting_extra_min"]):
                out.append(Finding(
                    "prolonged_sitting", "digest", round((longest - b.median) / b.scale, 2),
                    f"Sat for {longest / 60:.1f} h without getting up; the longest sit is "
                    f"usually {b.low / 60:.1f} to {b.high / 60:.1f} h",
                    self._series("sit_longest_min", longest),
                    series_of="sit_longest_min"))
        if (self.poor_night and composite.get("mobility", 0.0) >= 1.5
                and not self._quiet("bad_day", day)):
            out.append(Finding("bad_day", "digest", round(composite["mobility"], 2),
                               "A poor night followed by a day well below the usual activity "
                               f"(activity score {composite['mobility']:.1f} below usual)",
                               self._series("rise_s_median", feats.get("rise_s_median")),
                               series_of="rise_s_median"))
        for sensor, n in silent.items():
            if n == 2 and (sensor == "home" or self._expected(sensor)):
                what = ("No data at all from the home" if sensor == "home"
                        else f"The {sensor.replace('_', ' ')} sensor has reported nothing")
                out.append(Finding("device", "digest", float(n),
                                   f"{what} for {n} days; please check the equipment "
                                   "(this is not a health alert)", [], subject=sensor))
        return out

    def _follow_up(self, cond: str, members: tuple[tuple[str, int], ...],
                   feats: dict[str, float], base: dict[str, _Baseline], z: dict[str, float],
                   composite: float, said: dict[str, list[Any]]) -> Finding | None:
        """After a finding, a day still clearly worse than usual on the condition's
        leading evidence (water for drinking less) and worse than when it was last said
        is said again in plain words; how often it reaches anyone is the alert
        policy's (``follow_up_hours``)."""
        run = self.run.get(cond, 0) + 1
        if cond not in STILL or composite < 1.0 or run < 2:
            return None
        signs = dict(members)
        ranked = sorted(((signs[f] * z[f], f) for f in signs if f in z
                         and (cond != "dehydration" or f in WATER_FEATURES)), reverse=True)
        if not ranked or ranked[0][0] < 1.0:
            return None
        lead = ranked[0][1]
        last = self.said.get(cond)
        if last is not None and last[0] in z:
            lead = str(last[0])
            # Worse than last said, by more than half its usual spread: it keeps going.
            if signs[lead] * (feats[lead] - float(last[1])) <= 0.5 * base[lead].scale:
                return None
        said[cond] = [lead, feats[lead]]
        b = base[lead]
        said_today = today(lead, feats[lead])
        text = (f"Still {STILL[cond]}: {said_today[0].lower() + said_today[1:]} (usually "
                f"{fmt(lead, b.low).removesuffix(' L')} to {fmt(lead, b.high)}), the "
                f"{ordinal(run)} day running")
        return Finding(cond, "digest", round(composite, 2), text,
                       self._series(lead, feats[lead]), follow_up=True,
                       series_of=lead)

    def _expected(self, sensor: str) -> bool:
        return self.days >= 7 and self.present.get(sensor, 0) >= 0.7 * self.days

    def score_one(self, x: dict[str, Any]) -> list[Finding]:
        """What looks changed on day ``x``; learns nothing."""
        return list(self._assess(x).findings)

    def learn_one(self, x: dict[str, Any]) -> None:
        """Take day ``x`` in: CUSUMs, refractory marks, and (unless it is part of an
        unfolding change) the baselines."""
        a = self._assess(x)
        self._cache = None
        p = self.params
        feats = self._clean(x)
        weekend = float(int(bool(x.get("weekend", 0))))
        for f in FEATURES:
            r = self.recent.setdefault(f, [])
            r.append(feats.get(f))
            del r[:-6]
        self.silent = a.silent
        for sensor, keys in SENSORS.items():
            if any(k in feats for k in keys):
                self.present[sensor] = self.present.get(sensor, 0) + 1
        self.said.update(a.said)
        for fnd in a.findings:
            self.last[fnd.condition] = a.day
        if not feats:
            return
        watching = self.days >= p["learning_days"]
        frozen: set[str] = set()
        for cond, members in CONDITIONS.items():
            if cond not in a.composite:
                continue
            h = self._cusum_params(cond)[1]
            self.cusum[cond] = round(a.cusum[cond], 4)
            self.run[cond] = self.run.get(cond, 0) + 1 if a.composite[cond] > 0.5 else 0
            if a.cusum[cond] > h / 2 and watching:
                self.elevated[cond] = self.elevated.get(cond, 0) + 1
                if self.elevated[cond] >= p["rebaseline_days"]:
                    log.info("%s elevated %d days: taken as the new normal", cond,
                             self.elevated[cond])
                    self.cusum[cond] = 0.0
                    self.elevated[cond] = 0
                else:
                    frozen.update(f for f, _ in members)
            else:
                self.elevated[cond] = 0
        self.poor_night = a.composite.get("sleep", 0.0) >= 2.0
        acute = {fnd.condition for fnd in a.findings}
        if "inactivity" in acute:
            frozen.add("first_activity_min")
        if "prolonged_sitting" in acute:
            frozen.add("sit_longest_min")
        for f, v in feats.items():
            if watching and (f in frozen or abs(a.z.get(f, 0.0)) > 5):
                continue
            h = self.hist.setdefault(f, [])
            h.append([round(v, 2), weekend])
            del h[:-p["window"]]
        self.days += 1


@dataclass
class EngineDetector:
    """The Detector protocol over one PersonalModel per resident: each day
    ``score_one`` then ``learn_one``. Findings become Alerts (``device`` ones too;
    the evaluation harness does not count those as health alerts)."""

    params: dict[str, Any] = field(default_factory=dict)
    models: dict[str, PersonalModel] = field(default_factory=dict)

    def score_day(self, resident: str, day: date, features: dict[str, float]) -> list[Alert]:
        m = self.models.get(resident)
        if m is None:
            m = self.models[resident] = PersonalModel(**self.params)
        x: dict[str, Any] = {**features, "day": day.isoformat(),
                             "weekend": int(day.weekday() >= 5)}
        findings = m.score_one(x)
        m.learn_one(x)
        return [Alert(resident, day, f.condition, f.severity, f.text) for f in findings
                if f.condition not in DIGEST_ONLY]


def state_bytes(model: PersonalModel) -> int:
    return len(json.dumps(model.to_dict()))

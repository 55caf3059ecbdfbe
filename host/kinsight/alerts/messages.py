"""How an alert reads to the person it goes to: ``compose`` writes an e-mail (and the
webhook's JSON) as a person would: the member greeted by name, the resident called
what that member calls them (``known_as``, else the policy's ``name``), the evidence
with its units, the last days' values with theirs, what to do, and the link that
opens the alert in the care team's app.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from ..learning import condition_words
from ..learning.findings import FEATURES, fmt
from .policy import Member, ResidentPolicy
from .records import AlertRecord

# What the person reading can do about each condition; "{who}" is the resident.
WHAT_TO_DO = {
    "not_up": "Please call {who} now, or go round, to check that they are all right.",
    "silent_home": "Please call {who} now, or go round, to check that they are all right.",
    "inactivity": "Please call {who} today to check that they are all right.",
    "prolonged_sitting": "Please call {who} or go round now: they may be unable to get up.",
    "prolonged_toilet": "Please call {who} or go round now: they may be unwell or unable "
                        "to get up.",
    "prolonged_stairs": "Please call {who} or go round now: they may have fallen on the "
                        "stairs.",
    "night_wandering": "Please check that {who} is safe, and ask what kept them up.",
    "out_overnight": "Please check where {who} is and that they are safe.",
    "no_water": "Please check that {who} has something to drink, and that the tap works.",
    "dehydration": "Please make sure {who} drinks enough: offer a drink when you call or "
                   "visit, and mention it to their practitioner if it goes on.",
    "uti": "More toilet visits, above all at night, can be an early sign of a urine "
           "infection: please ask {who} how they feel, and their practitioner about a check.",
    "mobility": "Slower to get up and about can follow an illness, pain, a new medicine or "
                "a fall: please ask {who} how they are, and tell their practitioner if it "
                "goes on.",
    "sleep": "Please ask {who} how they have been sleeping.",
    "bad_day": "Please ask {who} how they are feeling today.",
    "device": "This is about the equipment, not about {who}'s health: please check the "
              "sensor, or ask the installer to.",
}
DEFAULT_TO_DO = "Please check on {who} and say what you found."


def _values(a: AlertRecord) -> str:
    """``Mon 30 Nov 1.2 L, Tue 1 Dec 0.4 L``: the series with its unit, where known."""
    def said(v: Any) -> str:
        if v is None:
            return "no reading"
        return fmt(a.series_of, float(v)) if a.series_of in FEATURES else f"{v:g}"
    return ", ".join(f"{date.fromisoformat(d).strftime('%a %d %b')} {said(v)}"
                     for d, v in a.series)


def _title(a: AlertRecord) -> str:
    return condition_words(a.condition)


def compose(resident: str, kind: str, alerts: list[AlertRecord],
            rp: ResidentPolicy | None = None, member: Member | None = None,
            links: dict[int, str] | None = None) -> tuple[str, str, dict[str, Any]]:
    """The subject, the body and the webhook's JSON of one message about ``alerts``."""
    who = rp.called(member, resident) if rp is not None else resident
    if kind == "digest":
        subject = (f"Kinsight: {len(alerts)} change{'s' if len(alerts) != 1 else ''} "
                   f"to look at for {who}")
        opening = f"Kinsight noticed {'these changes' if len(alerts) > 1 else 'a change'} " \
                  f"in {who}'s days, to look at when you can:"
    else:
        a = alerts[0]
        lead = "Still not acknowledged: " if kind == "escalation" else ""
        subject = f"{lead}Urgent: {_title(a)}, {who}"
        opening = (f"Kinsight needs someone to check on {who} now"
                   + (" (nobody has acknowledged it yet)." if kind == "escalation" else "."))
    lines = [f"Hello {member.name}," if member is not None else "Hello,", "", opening, ""]
    for a in alerts:
        lines.append(f"{_title(a)} ({a.severity}), {date.fromisoformat(a.day):%A %d %B}:")
        lines.append(f"  {a.text}.")
        if a.series:
            lines.append(f"  The last days: {_values(a)}.")
        lines.append("  " + WHAT_TO_DO.get(a.condition, DEFAULT_TO_DO).format(who=who))
        if links and a.id in links:
            lines.append(f"  Open it, and say what you found: {links[a.id]}")
        else:
            lines.append(f"  (Alert {a.id}: say what you found with kinsight ack {a.id} "
                         "--outcome useful|not-useful|false-alarm.)")
        lines.append("")
    if links:
        lines.append("The link opens the alert after you sign in, for a week.")
    lines.append("Kinsight supports your judgement; it does not replace it. If you are "
                 f"worried about {who}, act as you would without it.")
    payload = {"kind": kind, "resident": resident, "called": who,
               "alerts": [{**a.as_dict(), **({"link": links[a.id]} if links and a.id in links
                                            else {})} for a in alerts]}
    return subject, "\n".join(lines) + "\n", payload

"""The real-time rules, each on a fortnight of a regular routine and a changed today."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from kinsight.learning import realtime
from kinsight.residents import Activity

TZ = "Europe/London"
ZI = ZoneInfo(TZ)
TODAY = date(2024, 6, 20)
MIN = 60_000


def at(day: date, hhmm: str) -> int:
    h, m = map(int, hhmm.split(":"))
    return int(datetime.combine(day, datetime.min.time(), ZI).replace(hour=h, minute=m)
               .timestamp() * 1000)


def act(sensor: str, day: date, hhmm: str, minutes: float = 1, value: float | None = None
        ) -> Activity:
    s = at(day, hhmm)
    return Activity("r", sensor, s, s + int(minutes * MIN), value)


def usual_day(d: date, *, morning: bool = True, evening: bool = True) -> list[Activity]:
    out = []
    if morning:
        # in bed from 23:00 the evening before until 07:00
        out.append(Activity("r", "bed", at(d - timedelta(days=1), "23:00"), at(d, "07:00")))
        out += [act("tap", d, f"{h:02d}:10", 1, 250) for h in (8, 10, 12)]
        out += [act("toilet", d, "07:30", 4), act("seat", d, "09:00", 60, 2.0)]
    if evening:
        out += [act("tap", d, f"{h:02d}:10", 1, 250) for h in (14, 16, 18, 20)]
        out += [act("toilet", d, "13:00", 5), act("stairs", d, "21:00", 1)]
    return out


def fortnight() -> list[Activity]:
    return [a for i in range(14, 0, -1) for a in usual_day(TODAY - timedelta(days=i))]


def test_prolonged_presence_from_the_event_or_a_long_visit():
    acts = fortnight()
    now = at(TODAY, "15:00")
    assert realtime.prolonged_presence(acts, now, TZ) == []
    long_event = [*acts, act("toilet_long", TODAY, "14:00", 50)]
    (f,) = realtime.prolonged_presence(long_event, now, TZ)
    assert f.condition == "prolonged_toilet" and f.severity == "urgent"
    assert "50 min" in f.text and "14:00" in f.text
    long_visit = [*acts, act("stairs", TODAY, "14:30", 25)]
    (g,) = realtime.prolonged_presence(long_visit, now, TZ)
    assert g.condition == "prolonged_stairs" and g.score >= 2.0
    # yesterday's long visit is outside a 12-hour window
    old = [*acts, act("toilet", TODAY - timedelta(days=1), "10:00", 90)]
    assert realtime.prolonged_presence(old, now, TZ, window_h=12) == []


def test_not_up_after_the_personal_getup_time_plus_margin():
    acts = fortnight()
    assert realtime.personal_getup_min(acts, TODAY, TZ) == 7 * 60
    # nothing yet today; at 08:30 it is within the 2-hour margin, at 09:30 it is not
    assert realtime.not_up(acts, at(TODAY, "08:30"), TZ) == []
    (f,) = realtime.not_up(acts, at(TODAY, "09:30"), TZ)
    assert f.condition == "not_up" and "usually up by 07:00" in f.text
    # up and about: no finding
    up = [*acts, act("toilet", TODAY, "07:40", 3)]
    assert realtime.not_up(up, at(TODAY, "09:30"), TZ) == []
    # a later personal routine moves the limit: up at 09:00 usually -> 09:30 is fine
    late = [Activity(a.resident, a.sensor, a.start_ms + 2 * 60 * MIN, a.end_ms + 2 * 60 * MIN,
                     a.value) for a in acts]
    assert realtime.not_up(late, at(TODAY, "09:30"), TZ) == []
    # too little history: nothing
    assert realtime.not_up(acts[-20:], at(TODAY, "11:30"), TZ) == []


def test_no_water_for_an_unusually_long_daytime_stretch():
    at_home = usual_day(TODAY, evening=False)
    # no water after 12:10, the resident not seen either: out, or asleep, not "no water"
    assert realtime.no_water(fortnight() + at_home, at(TODAY, "17:00"), TZ) == []
    about = [act("seat", TODAY, t, 30) for t in ("13:00", "14:20", "15:40")]
    acts = fortnight() + at_home + about
    # the last draw at 12:10; the usual longest daytime gap is 2 h, the limit 4 h
    assert realtime.no_water(acts, at(TODAY, "15:00"), TZ) == []
    (f,) = realtime.no_water(acts, at(TODAY, "17:00"), TZ)
    assert f.condition == "no_water" and "since 12:10" in f.text and "4.8 h" in f.text
    # a draw at 15:00 resets the stretch
    drank = [*acts, act("tap", TODAY, "15:00", 1, 200)]
    assert realtime.no_water(drank, at(TODAY, "17:00"), TZ) == []
    # at night the rule says nothing
    assert realtime.no_water(acts, at(TODAY, "23:30"), TZ) == []


def test_night_wandering_against_a_still_usual_night():
    acts = fortnight() + usual_day(TODAY)
    assert realtime.night_wandering(acts, at(TODAY, "06:00"), TZ) == []
    # in bed 23:00 to 07:00 every night: the heart of the night is 00:00 to 06:00
    assert realtime.personal_night(acts, TODAY, TZ) == (23 * 60, 7 * 60)
    spells = (("stairs", "01:20"), ("toilet", "02:00"), ("tap", "02:40"), ("tap", "02:45"),
              ("seat", "03:10"))
    one_night = [*acts] + [act(s, TODAY, t, 2) for s, t in spells]
    # one restless night alone is not a pattern (and no door opened)
    assert realtime.night_wandering(one_night, at(TODAY, "06:00"), TZ) == []
    # the night before yesterday was restless too: two of the last three
    wander = one_night + [act(s, TODAY - timedelta(days=2), t, 2) for s, t in spells]
    (f,) = realtime.night_wandering(wander, at(TODAY, "06:00"), TZ)
    assert "2 of the last 3 nights" in f.text
    # the toilet visit is not wandering; the two draws five minutes apart are one spell
    assert f.condition == "night_wandering" and "3 times" in f.text
    assert "between 00:00 and 06:00" in f.text and f.severity == "digest"
    # not yet at 02:00 (one spell so far), and said as soon as the third spell begins
    assert realtime.night_wandering(wander, at(TODAY, "02:00"), TZ) == []
    assert realtime.night_wandering(wander, at(TODAY, "03:11"), TZ) != []
    # the front door opening in the night makes even one restless night urgent, also
    # when it opens in the middle of a spell up and about
    (g,) = realtime.night_wandering([*one_night, act("door", TODAY, "03:40", 1)],
                                    at(TODAY, "06:00"), TZ)
    assert g.severity == "urgent" and "door opened at 03:40" in g.text
    (g,) = realtime.night_wandering([*one_night, act("door", TODAY, "03:13", 1)],
                                    at(TODAY, "06:00"), TZ)
    assert g.severity == "urgent" and "door opened at 03:13" in g.text and "3 times" in g.text
    # being up far more than usual on one night, with the door shut, wakes nobody: it
    # waits for a second restless night (then goes to the digest)
    many = [*one_night, *(act("seat", TODAY, t, 2) for t in ("03:40", "04:10", "04:40"))]
    assert realtime.night_wandering(many, at(TODAY, "06:00"), TZ) == []
    (h,) = realtime.night_wandering(
        [*many, *(act(s, TODAY - timedelta(days=1), t, 2) for s, t in spells)],
        at(TODAY, "06:00"), TZ)
    assert h.severity == "digest" and "6 times" in h.text
    # a bathroom door at night is not the front door
    inner = Activity("r", "door", at(TODAY, "03:40"), at(TODAY, "03:41"), None, "bathroom")
    assert realtime.night_wandering([*one_night, inner], at(TODAY, "06:00"), TZ) == []
    # an early riser's 06:30 is not night for them; someone who settles at 01:00 is not
    # wandering at 23:30
    late = [*acts, act("tap", TODAY - timedelta(days=1), "23:30", 1)]
    assert realtime.night_wandering(late, at(TODAY, "06:00"), TZ) == []
    # someone who is usually up several times at night is not flagged for three
    busy = list(wander)
    for i in range(1, 15):
        d = TODAY - timedelta(days=i)
        busy += [act(s, d, t, 2) for s, t in (("seat", "01:30"), ("tap", "02:30"),
                                             ("stairs", "03:30"))]
    assert realtime.night_wandering(busy, at(TODAY, "06:00"), TZ) == []
    assert {f.condition for f in realtime.check(wander, at(TODAY, "06:00"), TZ)} == {
        "night_wandering"}

def test_night_wandering_follows_the_residents_own_night():
    # an early bird: in bed 20:30 to 05:00, busy in the kitchen from 05:00
    def early_day(d: date) -> list[Activity]:
        return [Activity("r", "bed", at(d - timedelta(days=1), "20:30"), at(d, "05:00")),
                *(act(s, d, t, 2) for s, t in (("tap", "05:05"), ("seat", "05:20"),
                                               ("tap", "05:40"), ("stairs", "06:10"),
                                               ("tap", "12:00"), ("seat", "18:00")))]
    acts = [a for i in range(14, -1, -1) for a in early_day(TODAY - timedelta(days=i))]
    assert realtime.personal_night(acts, TODAY, TZ) == (20 * 60 + 30, 5 * 60)
    assert realtime.night_wandering(acts, at(TODAY, "07:00"), TZ) == []
    # the same three spells in the heart of their night (21:30 to 04:00) are noticed
    up = [*acts, *(act(s, d, t, 2) for d in (TODAY, TODAY - timedelta(days=1))
                   for s, t in (("tap", "00:30"), ("seat", "01:30"), ("stairs", "02:30")))]
    (f,) = realtime.night_wandering(up, at(TODAY, "07:00"), TZ)
    assert "between 21:30 and 04:00" in f.text
    # but not the same three spells after their usual get-up time
    later = [*acts, *(act(s, d, t, 2) for d in (TODAY, TODAY - timedelta(days=1))
                      for s, t in (("tap", "04:30"), ("seat", "06:40"), ("stairs", "07:30")))]
    assert realtime.night_wandering(later, at(TODAY, "08:00"), TZ) == []


# --- each sensor's own semantics, corroboration, the safety net -----------------------------

def room_act(sensor: str, day: date, hhmm: str, minutes: float, room: str | None) -> Activity:
    s = at(day, hhmm)
    return Activity("r", sensor, s, s + int(minutes * MIN), None, room)


def contact_home(toilet_min: float) -> list[Activity]:
    """A fortnight in a home of contacts: the toilet's "on" lasts ``toilet_min`` a visit."""
    out = []
    for i in range(14, 0, -1):
        d = TODAY - timedelta(days=i)
        out += [room_act("toilet", d, t, toilet_min, "bathroom") for t in ("07:30", "13:00",
                                                                            "19:00")]
        out += [room_act("fridge", d, t, 0.5, "kitchen") for t in ("08:00", "12:30", "18:30")]
        out += [room_act("cupboard", d, t, 0.2, "kitchen") for t in ("08:05", "12:35", "18:35")]
        out.append(room_act("light", d, "21:30", 60, "living room"))
    return out


def test_a_stay_is_read_only_from_a_sensor_whose_on_lasts_as_long_as_a_visit():
    now = at(TODAY, "16:00")
    # presence in the bathroom, five minutes a visit: an hour and a half alone is a stay
    presence = contact_home(5)
    (f,) = realtime.prolonged_presence([*presence, room_act("toilet", TODAY, "14:30", 90,
                                                            "bathroom")], now, TZ)
    assert f.severity == "urgent" and "nothing else moving" in f.text
    assert "a visit usually takes 5 min" in f.text
    # a flush contact that stays on 40 minutes whatever the visit says nothing of stays
    flush = contact_home(40)
    assert realtime.prolonged_presence([*flush, room_act("toilet", TODAY, "13:30", 150,
                                                         "bathroom")], now, TZ) == []
    # nor does a flush that is "on" for seconds
    moment = contact_home(0.4)
    assert realtime.prolonged_presence([*moment, room_act("toilet", TODAY, "14:00", 120,
                                                          "bathroom")], now, TZ) == []


def test_a_long_stay_with_the_kitchen_in_use_is_not_a_fall():
    now = at(TODAY, "16:00")
    stay = room_act("toilet", TODAY, "14:30", 90, "bathroom")
    kitchen = [room_act("fridge", TODAY, "15:00", 1, "kitchen"),
               room_act("cupboard", TODAY, "15:20", 1, "kitchen")]
    home = contact_home(5)
    assert realtime.prolonged_presence([*home, stay, *kitchen], now, TZ) == []
    # one sign elsewhere is not enough to rule a fall out (a pet, a draught)
    assert realtime.prolonged_presence([*home, stay, kitchen[0]], now, TZ) != []
    # someone sitting in the living room all along is not on the bathroom floor
    sitting = Activity("r", "seat", at(TODAY, "14:00"), at(TODAY, "16:00"), 2.0, "living room")
    assert realtime.prolonged_presence([*home, stay, sitting], now, TZ) == []


def test_a_sensor_on_far_beyond_its_own_longest_is_equipment():
    home = contact_home(5)
    stuck = room_act("toilet", TODAY, "06:00", 10 * 60, "bathroom")
    day = [room_act("fridge", TODAY, t, 0.5, "kitchen") for t in ("08:00", "12:30")]
    day += [room_act("cupboard", TODAY, "12:35", 0.2, "kitchen")]
    findings = realtime.check([*home, stuck, *day], at(TODAY, "16:00"), TZ)
    device = [f for f in findings if f.condition == "device"]
    assert device and "toilet sensor in the bathroom has been on for 10.0 h" in device[0].text
    assert "not a health alert" in device[0].text
    assert not [f for f in findings if f.severity == "urgent"]


def test_a_silent_home_is_urgent_and_going_out_is_not():
    home = contact_home(5)
    morning = [room_act("fridge", TODAY, "08:00", 0.5, "kitchen"),
               room_act("toilet", TODAY, "08:30", 5, "bathroom")]
    # the usual longest still stretch is under 5 h: at 15:00, six and a half hours of
    # nothing at all is a reason to check on them now
    (f,) = realtime.silent_home([*home, *morning], at(TODAY, "15:00"), TZ)
    assert f.severity == "urgent" and "since 08:30" in f.text and "check on them" in f.text
    assert realtime.silent_home([*home, *morning], at(TODAY, "10:00"), TZ) == []
    # out of the front door, then silence: out, not down
    out = [*home, *morning, room_act("door", TODAY, "09:00", 0.1, "entrance")]
    assert realtime.check(out, at(TODAY, "15:00"), TZ) == []
    # a bathroom door is not the way out
    inner = [*home, *morning, room_act("door", TODAY, "08:40", 0.1, "bathroom")]
    assert [f.condition for f in realtime.check(inner, at(TODAY, "15:00"), TZ)] == [
        "silent_home"]
    # out for the night: for the record, never "down", and no not-up in the morning
    night_out = [*home, room_act("door", TODAY - timedelta(days=1), "22:00", 0.1,
                                 "entrance")]
    (o,) = realtime.check(night_out, at(TODAY, "03:00"), TZ)
    assert o.condition == "out_overnight" and o.severity == "digest"
    assert "Went out of the front door at 22:00" in o.text
    assert realtime.check(night_out, at(TODAY, "11:00"), TZ) == []


def test_not_up_needs_sensors_that_were_live_last_evening():
    home = contact_home(5)
    # an ordinary evening, then nothing: not up is urgent at 11:00
    (f,) = realtime.not_up(home, at(TODAY, "11:00"), TZ)
    assert f.severity == "urgent"
    # the data stopped early yesterday evening and these sensors cannot say they are
    # alive: ask about the equipment (and that all is well), do not wake anyone
    early = [a for a in home if a.start_ms < at(TODAY - timedelta(days=1), "15:00")]
    (g,) = realtime.not_up(early, at(TODAY, "11:00"), TZ)
    assert g.condition == "device" and g.severity == "digest"
    # with heartbeats the sensors say they are alive: urgent again
    beats = [Activity("r", "heartbeat", t, t, None, "toilet")
             for t in range(at(TODAY - timedelta(days=1), "16:00"), at(TODAY, "11:00"),
                            3 * 60 * MIN)]
    (h,) = realtime.not_up(early + beats, at(TODAY, "11:00"), TZ)
    assert h.condition == "not_up" and h.severity == "urgent"


def test_a_chattering_sensor_is_equipment_and_counts_as_one_visit():
    from kinsight.learning import daily_features

    home = contact_home(5)
    start = at(TODAY, "10:00")
    bounce = [Activity("r", "toilet", start + i * 30_000, start + i * 30_000 + 10_000, None,
                       "bathroom") for i in range(80)]
    (f,) = realtime.chattering([*home, *bounce], at(TODAY, "10:45"), TZ)
    assert f.condition == "device" and "switched 80 times in the last hour" in f.text
    assert realtime.chattering(home, at(TODAY, "10:45"), TZ) == []
    # the same sensor with a room from a node and none from an import: no TypeError
    unroomed = [Activity(a.resident, a.sensor, a.start_ms, a.end_ms, a.value, None)
                for a in bounce[:3]]
    (g,) = realtime.chattering([*home, *bounce, *unroomed], at(TODAY, "10:45"), TZ)
    assert g.condition == "device"
    # never health evidence: the day counts one toilet visit for the burst, not eighty
    day = daily_features([*home, *bounce], TZ)[TODAY]
    assert day["toilet_day"] == 1

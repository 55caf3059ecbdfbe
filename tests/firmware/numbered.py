# The extractor of the loss tests' nodes (powercut_node.py, chaos_node.py): events and
# interval summaries carrying their own ids (an event's duration, an interval's episode
# count), so that the host's rows can be matched one for one with what the node took.

from kinsight_wire import (
    ET_VISIT,
    EV_DURATION_DS,
    EV_ROLE,
    EV_TYPE,
    ROLE_TOILET,
    SM_EPISODES,
    SM_PERIOD_S,
    SM_ROLE,
)


class Numbered:
    """``count`` events, ids ``first_id``.., one every ``period_ms``; an interval id at
    every summary. ``say()`` prints what the last node step took ("noticed ID",
    "interval ID"), for the test that cuts the power."""

    def __init__(self, sink, first_id, count, period_ms, period_s=1):
        self.sink = sink
        self.next_id = first_id
        self.last_id = first_id + count
        self.period_ms = period_ms
        self.period_s = period_s
        self.next_ms = period_ms
        self.interval_id = first_id
        self.noticed = []
        self.intervals = []

    def feed(self, t_ms, _value):
        if t_ms >= self.next_ms and self.next_id < self.last_id:
            self.sink.event(t_ms, {EV_TYPE: ET_VISIT, EV_ROLE: ROLE_TOILET,
                                   EV_DURATION_DS: self.next_id})
            self.noticed.append(self.next_id)
            self.next_id += 1
            self.next_ms += self.period_ms

    def summary(self, _now_ms):
        self.interval_id += 1
        self.intervals.append(self.interval_id)
        return {SM_ROLE: ROLE_TOILET, SM_PERIOD_S: self.period_s, SM_EPISODES: self.interval_id}

    def say(self):
        while self.noticed:
            print("noticed %d" % self.noticed.pop(0))
        while self.intervals:
            print("interval %d" % self.intervals.pop(0))

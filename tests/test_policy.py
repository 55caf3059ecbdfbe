"""The alert policy file: every documented shape loads; a malformed one is refused whole,
naming the file, the key and what is wrong, before it can hold back a single alert."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from kinsight.alerts import Policy
from kinsight.alerts.policy_schema import CONDITIONS
from kinsight.alerts.router import BASE_SCORE
from kinsight.errors import ConfigError
from support import REPO


def documented_policy() -> dict[str, Any]:
    text = (REPO / "docs" / "alerts.md").read_text(encoding="utf-8")
    match = re.search(r"```json\n(.*?)```", text, re.S)
    assert match is not None
    return json.loads(match.group(1))


def test_the_documented_policy_and_the_shapes_in_use_load():
    p = Policy.from_dict(documented_policy())
    flat = p.for_resident("flat-12")
    assert flat.quiet_hours == (21 * 60 + 30, 7 * 60 + 30) and flat.throttle_hours == 72
    assert [m.role for m in flat.circle] == ["carer", "family", "practitioner"]
    for raw in ({}, {"organisation": {"throttle_hours": 0}},
                {"organisation": {"quiet_hours": None, "conditions": None,
                                  "follow_up_hours": None, "escalation_minutes": None}},
                {"residents": {"r": {"consent": {"carer": "all"}, "circle": [
                    {"name": "c", "role": "carer", "receives": "all",
                     "webhook": "http://127.0.0.1:9/hook"}]}}}):
        Policy.from_dict(raw)


def test_every_condition_the_router_scores_is_one_a_policy_can_name():
    assert set(CONDITIONS) == set(BASE_SCORE)


@pytest.mark.parametrize("text, said", [
    ('{"organisation": {"throttle_hours": NaN}}', "NaN is not a JSON number"),
    ('{"organisation": {"throttle_hours": Infinity}}', "Infinity is not a JSON number"),
    ('{"organisation": {"throttle_hours": -Infinity}}', "-Infinity is not a JSON number"),
    ('{"residents": {"r": {"sensitivity": {"not_up": NaN}}}}', "NaN is not a JSON number"),
    ('{"organisation": {"throttle_hours": 1e400}}', "1e400 is too large a number"),
    ('{"organisation": {"throttle_hours": ' + "9" * 400 + "}}",
     "organisation.throttle_hours: must be at most 8784"),
    ("[" * 5000 + "]" * 5000, "nested too deeply"),
    ('{"organisation": ', "not a JSON policy"),
])
def test_numbers_json_does_not_have_are_refused(tmp_path: Path, text: str, said: str):
    path = tmp_path / "policy.json"
    path.write_text(text)
    with pytest.raises(ConfigError) as refused:
        Policy.load(path)
    assert str(refused.value).startswith(f"{path}: ") and said in str(refused.value)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_a_policy_built_in_code_cannot_carry_nan_either(value: float):
    with pytest.raises(ConfigError, match="throttle_hours: must be a finite number"):
        Policy.from_dict({"organisation": {"throttle_hours": value}})
    with pytest.raises(ConfigError, match=r'residents.r.sensitivity.uti: must be a finite'):
        Policy.from_dict({"residents": {"r": {"sensitivity": {"uti": value}}}})


@pytest.mark.parametrize("raw, said", [
    ({"organisation": "x"}, "organisation: must be an object, not text"),
    ({"organisation": [1]}, "organisation: must be an object, not a list"),
    ({"residents": {"r": []}}, "residents.r: must be an object, not a list"),
    ({"organisation": {"circle": {"a": 1}}}, "organisation.circle: must be a list"),
    ([], "the policy: must be an object"),
    ({"organisations": {}}, 'the policy: unknown key "organisations"'),
    ({"organisation": {"throttle_hours": -1}}, "throttle_hours: must be at least 0, not -1"),
    ({"organisation": {"throttle_hours": "72"}}, "throttle_hours: must be a number, not text"),
    ({"organisation": {"throttle_hours": True}}, "must be a number, not true or false"),
    ({"residents": {"r": {"sensitivity": {"uti": 0}}}}, "sensitivity.uti: must be more than 0"),
    ({"residents": {"r": {"sensitivity": {"utii": 1}}}}, '"utii" is not one of'),
    ({"residents": {"r": {"conditions": ["dehydraton"]}}}, 'conditions[0]: "dehydraton"'),
    ({"residents": {"r": {"snooze": {"sleep": "next week"}}}}, '"next week" is not a date'),
    ({"residents": {"r": {"digest_time": "25:00"}}}, '"25:00" is not a time HH:MM'),
    ({"residents": {"flat 12": {"quiet_hours": {"start": "22:00"}}}},
     'residents["flat 12"].quiet_hours: needs both start and end'),
    ({"residents": {"r": {"circle": [{"name": "a", "role": "carer", "emial": "a@b.example"}]}}},
     'residents.r.circle[0]: unknown key "emial"'),
    ({"residents": {"r": {"circle": [{"name": "a", "role": "nurse"}]}}},
     'circle[0].role: "nurse" is not one of carer, family, practitioner'),
    ({"residents": {"r": {"circle": [{"role": "carer"}]}}}, "circle[0]: 'name' is missing"),
    ({"residents": {"r": {"circle": [{"name": "a", "role": "carer", "webhook": "ftp://x"}]}}},
     "webhook: \"ftp://x\" is not an http:// or https:// URL"),
    ({"residents": {"r": {"circle": [{"name": "a", "role": "carer",
                                      "receives": ["urgent", "urgnt"]}]}}},
     'circle[0].receives[1]: "urgnt" is not one of'),
    ({"residents": {"r": {"circle": [{"name": "a", "role": "carer",
                                      "urgent_in_quiet_hours": "yes"}]}}},
     "urgent_in_quiet_hours: must be true or false"),
    ({"residents": {"r": {"consent": {"carers": "all"}}}}, '"carers" is not one of'),
    ({"residents": {"r": {"holidays": [{"from": "2024-08-14", "to": "2024-08-01"}]}}},
     "residents.r.holidays[0]: 'to' 2024-08-01 is before 'from' 2024-08-14"),
    ({"residents": {"r": {"holidays": [{"from": "2024-02-30", "to": "2024-03-01"}]}}},
     "residents.r.holidays[0].from: '2024-02-30' is not a date"),
    ({"organisation": {"smtp": {"host": "mail.example"}}}, "smtp: 'sender' is missing"),
    ({"organisation": {"smtp": {"host": "m", "sender": "k@m.example", "tls": "yes"}}},
     'smtp.tls: "yes" is not one of starttls, implicit, none'),
    ({"organisation": {"smtp": {"host": "m", "sender": "k@m.example", "port": 70000}}},
     "smtp.port: must be at most 65535"),
    ({"organisation": {"webhook_secret": "short"}}, "webhook_secret: must be at least 16"),
])
def test_wrong_shapes_are_refused_naming_the_key(raw: Any, said: str):
    with pytest.raises(ConfigError) as refused:
        Policy.from_dict(raw, "policy.json")
    message = str(refused.value)
    assert message.startswith("policy.json: ") and said in message, message
    assert "\n" not in message and len(message) < 400


def test_one_webhook_url_has_one_secret():
    def carer(name: str, secret: str) -> dict[str, Any]:
        return {"name": name, "role": "carer", "webhook": "https://rota.example/hook",
                "webhook_secret": secret}

    with pytest.raises(ConfigError, match="another secret"):
        Policy.from_dict({"residents": {"a": {"circle": [carer("x", "s" * 16)]},
                                        "b": {"circle": [carer("y", "t" * 16)]}}})
    p = Policy.from_dict({"organisation": {"webhook_secret": "o" * 16},
                          "residents": {"a": {"circle": [carer("x", "s" * 16)]},
                                        "b": {"circle": [{"name": "z", "role": "carer",
                                                          "webhook": "https://b.example/"}]}}})
    assert p.webhook_secrets() == {"https://rota.example/hook": "s" * 16,
                                   "https://b.example/": "o" * 16}

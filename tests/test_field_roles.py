"""provision --role as the field tools parse it, for the wearable's heart_rate role."""

from __future__ import annotations

import pytest

from kinsight_field.link import CommandError
from kinsight_field.roles import parse_role
from kinsight_field.said import reading_text


def test_a_wearable_by_name_or_address():
    assert parse_role("heart_rate:ble:name=Polar H10 1A2B3C4D") == {
        "role": "heart_rate", "sensor": "ble", "name": "Polar H10 1A2B3C4D"}
    assert parse_role("heart_rate:ble:address=a0:9e:1a:12:34:56,high_bpm=150") == {
        "role": "heart_rate", "sensor": "ble", "address": "a0:9e:1a:12:34:56",
        "high_bpm": 150}


@pytest.mark.parametrize(("spec", "words"), [
    ("heart_rate:pir", "uses ble"),
    ("heart_rate:ble:name=", "needs the wearable's name"),
    ("heart_rate:ble:high_bpm=fast", "not a whole number"),
])
def test_bad_wearable_roles_say_why(spec, words):
    with pytest.raises(CommandError, match=words):
        parse_role(spec)


def test_status_says_a_wearable_is_read_by_the_running_node():
    text = reading_text({"role": "heart_rate", "sensor": "ble", "value": None})
    assert "BLE" in text and "None" not in text

"""Learning: each resident's own patterns, and what changes in them.

``features`` turns a resident's Activities into daily features (by local day, with
their own night); ``model.PersonalModel`` learns them one day at a time and scores
each new day (``learn_one``/``score_one``); ``detector`` holds the Detector
interface and the fixed-threshold baseline it has to beat; ``findings`` names the
features and conditions and says them in words; ``routine`` learns what a resident's
last fortnight says is usual, each sensor's own readings too; ``realtime`` has the
rules that look at today as it happens (a long toilet visit, not up, no water,
night wandering). Learning knows nothing of alerts: it says what it found
(``Finding``), and the alerts layer decides who hears of it.

May import: kinsight.errors, kinsight.residents.
"""

from __future__ import annotations

from .detector import CONDITION_WORDS, Alert, BaselineDetector, Detector, condition_words
from .features import (
    DEFAULT_NIGHT,
    FEATURES_VERSION,
    daily_features,
    learn_night,
    personal_features,
)
from .model import DIGEST_ONLY, EngineDetector, Finding, PersonalModel, state_bytes

__all__ = ["CONDITION_WORDS", "DEFAULT_NIGHT", "DIGEST_ONLY", "FEATURES_VERSION", "Alert",
           "BaselineDetector", "Detector", "EngineDetector", "Finding", "PersonalModel",
           "condition_words", "daily_features", "learn_night", "personal_features",
           "state_bytes"]

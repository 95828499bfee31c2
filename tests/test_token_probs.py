"""Class probabilities from an endpoint's token log-probabilities (``emo_core.token_probs``), by hand."""

import math

import pytest

from emo_core.backends import TokenChoices
from emo_core.token_probs import label_probabilities

EMOTION6 = ["anger", "disgust", "fear", "joy", "sadness", "surprise"]
FER7 = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]


def written(*tokens) -> list[TokenChoices]:
    """Tokens: a string is written with certainty; (text, {alternative: logprob}) has rivals."""
    choices = []
    for token in tokens:
        text, alternatives = (token, {token: 0.0}) if isinstance(token, str) else token
        choices.append(TokenChoices(text, alternatives[text], alternatives))
    return choices


def test_alternatives_that_begin_a_label_count_for_it():
    tokens = written("Predicted emotion:", (" fe", {" fe": -0.1, " dis": -2.5, " Anger": -3.0, " ok": -1.0}), "ar.")
    text = "Predicted emotion: fear."
    result = label_probabilities(tokens, text, text.index("fear"), EMOTION6)
    fear, disgust, anger = math.exp(-0.1), math.exp(-2.5), math.exp(-3.0)
    total = fear + disgust + anger
    assert result.distribution == pytest.approx({"anger": anger / total, "disgust": disgust / total,
                                                 "fear": fear / total, "joy": 0, "sadness": 0, "surprise": 0})
    assert result.coverage == pytest.approx(total, abs=1e-4) and result.ambiguous == 0
    assert result.unseen == ["joy", "sadness", "surprise"]


def test_a_word_longer_than_the_label_counts_and_a_shared_start_counts_for_none():
    tokens = written(("sadness", {"sadness": -0.2, "s": -1.0, "happy": -2.0}), ".")
    result = label_probabilities(tokens, "sadness.", 0, FER7)
    sad, happy = math.exp(-0.2), math.exp(-2.0)
    assert result.distribution["sad"] == pytest.approx(sad / (sad + happy))
    assert result.ambiguous == pytest.approx(math.exp(-1.0), abs=1e-4)  # "s": sad or surprise


def test_no_distribution_when_no_alternative_begins_a_label():
    tokens = written("Predicted emotion: ", ("amazing", {"amazing": -0.1, "other": -1.0}))
    assert label_probabilities(tokens, "Predicted emotion: amazing", 19, EMOTION6) is None


def test_no_distribution_when_the_tokens_do_not_line_up_with_the_text():
    # an endpoint that shows a partial character as bytes: offsets after it cannot be trusted
    tokens = written("Caf", "bytes:\\xc3", " emotion: ", ("joy", {"joy": -0.1}))
    assert label_probabilities(tokens, "Café emotion: joy", 14, EMOTION6) is None
    # the label inside a token after letters ("isjoy"): that token's rivals are not label starts
    assert label_probabilities(written(("isjoy", {"isjoy": -0.1, "isfear": -1.0})), "isjoy", 2, EMOTION6) is None

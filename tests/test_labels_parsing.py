"""Class sets, synonyms and the reading of "Predicted emotion: X. Reason: ..." answers."""

import pytest

from emo_core import CLASS_SETS, UnknownClassSetError, format_prediction, get_class_set, parse_prediction
from emo_core.labels import IMAGE_CLASS_SETS, label_for_word

MIKELS = CLASS_SETS["mikels8"].labels
EMOTION6 = CLASS_SETS["emotion6"].labels


def test_class_sets_match_the_papers():
    assert MIKELS == ("amusement", "awe", "contentment", "excitement", "anger", "disgust", "fear", "sadness")
    assert EMOTION6 == CLASS_SETS["emotionroi"].labels == ("anger", "disgust", "fear", "joy", "sadness", "surprise")
    assert set(CLASS_SETS["unbiasedemo"].labels) == {"anger", "fear", "joy", "love", "sadness", "surprise"}
    assert len(CLASS_SETS["webemo7"].labels) == 7 and "confusion" in CLASS_SETS["webemo7"].labels
    assert CLASS_SETS["fer7"].labels == ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
    assert CLASS_SETS["mer2023"].labels == ("neutral", "angry", "happy", "sad", "worried", "surprise")
    assert set(IMAGE_CLASS_SETS) <= set(CLASS_SETS)
    for class_set in CLASS_SETS.values():
        assert len(set(class_set.labels)) == len(class_set.labels)


def test_unknown_class_set_is_a_typed_error():
    with pytest.raises(UnknownClassSetError, match="unknown class set 'nope'"):
        get_class_set("nope")


@pytest.mark.parametrize(
    "text, labels, expected, status",
    [
        ("Predicted emotion: awe. Reason: a vast mountain.", MIKELS, "awe", "exact"),
        ("Predict emotion: sadness", MIKELS, "sadness", "exact"),
        ("predicted EMOTION: Contentment.", MIKELS, "contentment", "exact"),
        ("Predicted emotion: [fear]. Reason: dark alley", MIKELS, "fear", "exact"),
        ("Sure! Predicted emotion: the image feels like excitement. Reason: fireworks", MIKELS, "excitement", "exact"),
        ("Predicted emotion: happiness. Reason: smiles", EMOTION6, "joy", "synonym"),
        ("Predicted emotion: scared", EMOTION6, "fear", "synonym"),
        ("Predicted emotion: furious. Reason: shouting", CLASS_SETS["fer7"].labels, "angry", "synonym"),
        ("Anger", EMOTION6, "anger", "exact"),
    ],
)
def test_parse_prediction_reads_labels(text, labels, expected, status):
    parsed = parse_prediction(text, labels)
    assert (parsed.label, parsed.status) == (expected, status)


@pytest.mark.parametrize(
    "text, labels",
    [
        ("Predicted emotion: happiness", MIKELS),  # happy names no single Mikels class
        ("Predicted emotion: anger or fear", MIKELS),  # two labels: ambiguous
        ("I cannot identify emotions in images.", MIKELS),  # Emotion-LLaMA's refusal
        ("", EMOTION6),
        ("Predicted emotion: purple", EMOTION6),
    ],
)
def test_unreadable_answers_are_unparsed_not_defaulted(text, labels):
    parsed = parse_prediction(text, labels)
    assert parsed.label is None and parsed.status == "unparsed" and not parsed.parsed


def test_reason_is_extracted_and_formatted():
    parsed = parse_prediction("Predicted emotion: awe. Reason: A vast starry sky dwarfs the viewer.", MIKELS)
    assert parsed.reason == "A vast starry sky dwarfs the viewer."
    assert format_prediction("awe", "a vast sky") == "Predicted emotion: awe. Reason: a vast sky."


def test_synonyms_never_cross_into_ambiguous_labels():
    assert label_for_word("happy", MIKELS) is None
    assert label_for_word("joyful", EMOTION6) == "joy"
    assert label_for_word("worried", CLASS_SETS["mer2023"].labels) == "worried"
    assert label_for_word("anxious", CLASS_SETS["mer2023"].labels) == "worried"


# The datasets the papers evaluate on and the class set each uses (docs/papers.md), written out here.
DATASET_CLASS_SETS = {
    "emoset": "mikels8", "fi": "mikels8", "abstract": "mikels8", "artphoto": "mikels8", "iapsa": "mikels8",
    "emotion6": "emotion6", "emotionroi": "emotionroi", "unbiasedemo": "unbiasedemo", "webemo": "webemo7",
    "fer2013": "fer7", "mer2023": "mer2023", "merr": "merr9", "dfew": "dfew7",
}


@pytest.mark.parametrize("dataset, key", DATASET_CLASS_SETS.items())
def test_a_dataset_name_stands_for_its_class_set(dataset, key):
    from emo_core import resolve_class_set

    choice = resolve_class_set(dataset)
    assert choice.key == key and get_class_set(dataset) is CLASS_SETS[key]
    assert choice.dataset.casefold() == dataset  # the dataset's own spelling, e.g. "EmoSet"
    assert resolve_class_set(choice.dataset).key == key  # any case


@pytest.mark.parametrize("name, key, dataset", [
    ("mikels8", "mikels8", ""), ("Mikels-8", "mikels8", ""), (" FER-7 ", "fer7", ""), ("EmoSet", "mikels8", "EmoSet"),
    ("IAPSa", "mikels8", "IAPSa"), ("merr_9", "merr9", ""), ("Emotion6", "emotion6", "Emotion6"),
])
def test_keys_titles_and_datasets_resolve_ignoring_case_and_punctuation(name, key, dataset):
    from emo_core import resolve_class_set

    choice = resolve_class_set(name)
    assert (choice.key, choice.dataset) == (key, dataset)


@pytest.mark.parametrize("name", ["", "imagenet", "emo set 2", None, 8])
def test_unknown_names_are_typed_errors_that_list_the_choices(name):
    with pytest.raises(UnknownClassSetError) as error:
        get_class_set(name)
    assert "emoset" in str(error.value) and "mikels8" in str(error.value)


def test_menus_offer_every_dataset_once_and_only_names_the_resolver_accepts():
    from emo_core import VIDEO_CLASS_SETS, class_set_menu

    image, video = class_set_menu(IMAGE_CLASS_SETS), class_set_menu(VIDEO_CLASS_SETS)
    values = [value for _, value in image + video]
    assert len(values) == len(set(values))
    assert set(values) == set(DATASET_CLASS_SETS) | set(CLASS_SETS)
    for shown, value in image + video:
        assert ", ".join(get_class_set(value).labels) in shown
    assert {get_class_set(value).key for _, value in image} == set(IMAGE_CLASS_SETS)


def test_settings_take_dataset_names_and_refuse_the_wrong_kind():
    from emo_core import Settings

    settings = Settings.from_env({"EMO_IMAGE_CLASS_SET": "EmoSet", "EMO_VIDEO_CLASS_SET": "DFEW"})
    assert (settings.image_class_set, settings.video_class_set) == ("emoset", "dfew")  # as the menus spell them
    assert Settings.from_args(["--image-class-set", "Mikels-8"], env={}).image_class_set == "mikels8"
    with pytest.raises(ValueError, match="image_class_set.*unknown class set"):
        Settings(image_class_set="imagenet")
    with pytest.raises(ValueError, match="video_class_set: 'fer2013' is the fer7 class set"):
        Settings(video_class_set="fer2013")


@pytest.mark.parametrize("text, word", [
    ("Predicted emotion: awe. Reason: a vast mountain.", "awe"),
    ("Sure! Predicted emotion: the image feels like excitement. Reason: fireworks", "excitement"),
    ("Predicted emotion: [Fear]", "Fear"),
    ("Anger", "Anger"),
])
def test_the_labels_place_in_the_answer_is_known(text, word):
    parsed = parse_prediction(text, MIKELS + ("anger",))
    assert text[parsed.label_start: parsed.label_start + len(word)] == word


def test_a_reason_ends_where_a_second_answer_begins():
    from emo_core.parsing import split_reason

    assert split_reason(" they smile. ") == ("they smile.", "")
    assert split_reason("they smile. Predicted emotion: sadness. Reason: rain") == (
        "they smile.", "Predicted emotion: sadness. Reason: rain")
    assert split_reason("predict emotion: fear") == ("", "predict emotion: fear")
    assert parse_prediction("Predicted emotion: joy", EMOTION6).has_reason is False
    assert parse_prediction("Predicted emotion: joy. Reason:", EMOTION6).has_reason is True


def test_an_answer_without_a_reason_is_the_label_sentence_alone():
    assert format_prediction("awe", "  ") == "Predicted emotion: awe."
    assert format_prediction("awe", "wide sky!") == "Predicted emotion: awe. Reason: wide sky!"

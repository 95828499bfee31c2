"""Emotion class sets of the benchmarks both papers evaluate on, and the synonyms used to read answers.

A class set is chosen by its key (``mikels8``, ``emotion6``, ...). The label lists, and which paper
evaluates on which set, are in ``docs/papers.md``; the order of each list is the order shown in
prompts and charts.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import UnknownClassSetError


@dataclass(frozen=True)
class ClassSet:
    key: str
    title: str
    labels: tuple[str, ...]
    datasets: tuple[str, ...]

    @property
    def display(self) -> str:
        return f"{self.title} ({len(self.labels)}): " + ", ".join(self.labels)


_MIKELS = ("amusement", "awe", "contentment", "excitement", "anger", "disgust", "fear", "sadness")

CLASS_SETS: dict[str, ClassSet] = {
    c.key: c
    for c in (
        ClassSet("mikels8", "Mikels-8", _MIKELS, ("EmoSet", "FI", "Abstract", "ArtPhoto", "IAPSa")),
        ClassSet("emotion6", "Emotion6", ("anger", "disgust", "fear", "joy", "sadness", "surprise"), ("Emotion6",)),
        ClassSet("emotionroi", "EmotionROI", ("anger", "disgust", "fear", "joy", "sadness", "surprise"), ("EmotionROI",)),
        ClassSet("unbiasedemo", "UnbiasedEmo", ("anger", "fear", "joy", "love", "sadness", "surprise"), ("UnbiasedEmo",)),
        ClassSet(
            "webemo7", "WebEmo-7", ("anger", "confusion", "fear", "joy", "love", "sadness", "surprise"), ("WebEmo",)
        ),
        ClassSet("fer7", "FER-7", ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"), ("FER2013",)),
        ClassSet("mer2023", "MER2023", ("neutral", "angry", "happy", "sad", "worried", "surprise"), ("MER2023",)),
        ClassSet(
            "merr9",
            "MERR-9",
            ("neutral", "angry", "happy", "sad", "worried", "surprise", "fear", "contempt", "doubt"),
            ("MERR",),
        ),
        ClassSet("dfew7", "DFEW-7", ("happy", "sad", "neutral", "angry", "surprise", "disgust", "fear"), ("DFEW",)),
    )
}

# The output order of FER2013 classifiers (the same labels as the FER-7 class set).
FER_LABELS = CLASS_SETS["fer7"].labels

IMAGE_CLASS_SETS = ("mikels8", "emotion6", "emotionroi", "unbiasedemo", "webemo7", "fer7")
VIDEO_CLASS_SETS = ("mer2023", "merr9", "dfew7")

# Words that name the same emotion. Each group holds every class label of that emotion (e.g. "happy"
# and "joy") plus common synonyms; a word maps to a label only if exactly one label of the chosen
# class set is in its group, so "happy" never silently becomes Mikels "amusement".
SYNONYM_GROUPS: tuple[frozenset[str], ...] = tuple(
    frozenset(words.split())
    for words in (
        "anger angry rage fury furious mad annoyed annoyance irritated irritation frustrated frustration hostile",
        "happy joy happiness joyful joyous delighted delight cheerful glad elated",
        "sad sadness sorrow sorrowful grief unhappy melancholy depressed gloomy",
        "fear fearful afraid scared frightened fright terror terrified",
        "worried worry worrying anxious anxiety nervous concerned",
        "surprise surprised astonished astonishment amazed amazement shocked shock startled",
        "disgust disgusted revulsion repulsed revolted",
        "amusement amused funny humor humour humorous",
        "awe awed awestruck wonder",
        "contentment content contented peaceful serene serenity satisfied satisfaction",
        "excitement excited thrilled enthusiasm enthusiastic",
        "love loving affection affectionate tenderness",
        "confusion confused puzzled perplexed",
        "neutral indifferent expressionless",
        "contempt contemptuous scorn disdain",
        "doubt doubtful skeptical sceptical suspicious",
    )
)

_GROUP_OF: dict[str, frozenset[str]] = {word: group for group in SYNONYM_GROUPS for word in group}


def get_class_set(key: str) -> ClassSet:
    try:
        return CLASS_SETS[key]
    except KeyError:
        raise UnknownClassSetError(
            f"unknown class set {key!r}; choose one of: {', '.join(CLASS_SETS)}"
        ) from None


def label_for_word(word: str, labels: tuple[str, ...] | list[str]) -> str | None:
    """The one label of ``labels`` that ``word`` names (itself or a synonym), else None."""
    word = word.casefold()
    if word in labels:
        return word
    group = _GROUP_OF.get(word)
    if group is None:
        return None
    hits = [label for label in labels if label in group]
    return hits[0] if len(hits) == 1 else None

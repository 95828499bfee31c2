"""Emotion class sets of the benchmarks both papers evaluate on, and the synonyms used to read answers.

A class set is chosen by its key (``mikels8``, ``emotion6``, ...) or by the name of a dataset that
uses it (``emoset``, ``fi``, ``abstract``, ``artphoto``, ``iapsa`` -> ``mikels8``; ``fer2013`` ->
``fer7``; ``merr`` -> ``merr9``; ``dfew`` -> ``dfew7``; ...). Every place that takes a class set (the
library, the CLI, the settings, the app's API) goes through ``resolve_class_set``, which ignores
case and punctuation ("EmoSet", "Mikels-8") and says which dataset was asked for. The label lists
are in ``docs/papers.md``; the order of each list is the order shown in prompts and charts.
"""

from __future__ import annotations

import re
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


def synonym_group(word: str) -> frozenset[str] | None:
    """The synonym group of ``SYNONYM_GROUPS`` that holds ``word`` (lower case), else None."""
    return _GROUP_OF.get(word)


def _normal(name: str) -> str:
    return re.sub(r"[^0-9a-z]", "", name.casefold())


def _name_table() -> dict[str, tuple[str, str]]:
    """normalised name -> (class-set key, dataset name or ""). A dataset named like a key
    ("emotion6", "mer2023") counts as the dataset, so the answer says which dataset was meant."""
    names = {}
    for class_set in CLASS_SETS.values():
        names[_normal(class_set.key)] = names[_normal(class_set.title)] = (class_set.key, "")
    for class_set in CLASS_SETS.values():
        for dataset in class_set.datasets:
            if names.get(_normal(dataset), (class_set.key,))[0] != class_set.key:
                raise AssertionError(f"dataset {dataset} is spelled like another class set's key")
            names[_normal(dataset)] = (class_set.key, dataset)
    return names


_NAMES = _name_table()

DATASET_NAMES: dict[str, str] = {_normal(d): d for s in CLASS_SETS.values() for d in s.datasets}
"""Accepted dataset names (lower case) -> the dataset's own spelling ("emoset" -> "EmoSet")."""


@dataclass(frozen=True)
class ClassSetChoice:
    """What a class-set name resolved to: the class set, and the dataset it named ("" for a plain key)."""

    class_set: ClassSet
    dataset: str

    @property
    def key(self) -> str:
        return self.class_set.key


def resolve_class_set(name: str) -> ClassSetChoice:
    """The class set a key, title or dataset name stands for (case and punctuation ignored)."""
    found = _NAMES.get(_normal(name)) if isinstance(name, str) else None
    if found is None:
        raise UnknownClassSetError(
            f"unknown class set {str(name)[:40]!r}; choose a class set ({', '.join(CLASS_SETS)}) "
            f"or a dataset ({', '.join(DATASET_NAMES)})"
        )
    key, dataset = found
    return ClassSetChoice(CLASS_SETS[key], dataset)


def get_class_set(name: str) -> ClassSet:
    """The class set of a key or dataset name (see ``resolve_class_set``)."""
    return resolve_class_set(name).class_set


def class_set_name(name: str) -> str:
    """The one spelling of ``name`` that menus and settings use: the dataset's name in lower case
    ("EmoSet" -> "emoset") or the class set's key ("Mikels-8" -> "mikels8")."""
    choice = resolve_class_set(name)
    return _normal(choice.dataset) if choice.dataset else choice.key


def class_set_menu(keys: tuple[str, ...] | list[str]) -> list[tuple[str, str]]:
    """(shown text, value) pairs for a menu of the class sets ``keys``, each followed by the datasets
    that use it under their own names (a dataset named like its class set is listed once)."""
    menu = []
    for key in keys:
        class_set = CLASS_SETS[key]
        menu.append((class_set.display, key))
        for dataset in class_set.datasets:
            if _normal(dataset) != key:
                menu.append((f"{dataset} ({len(class_set.labels)}): " + ", ".join(class_set.labels), _normal(dataset)))
    return menu


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

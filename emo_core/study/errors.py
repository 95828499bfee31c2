"""Errors of the user study, each with a message meant for the rater or researcher who caused it."""

from __future__ import annotations

from ..errors import EmoError, InvalidInputError


class StudyError(EmoError):
    """Base of the study's refusals."""


class PairsFileError(StudyError, InvalidInputError):
    """A pairs CSV (or a batch caption CSV) that cannot become a study: nothing was created."""


class StudyNameError(StudyError, ValueError):
    """A study name that is malformed, taken (on create) or unknown."""


class UnknownStudyError(StudyNameError):
    """No study of that name."""


class StudyClosedError(StudyError):
    """The study no longer takes votes."""


class InvalidTokenError(StudyError):
    """A rater token that is unknown to the study or was revoked."""


class UnknownItemError(StudyError):
    """An item number the study does not have, or one not shown to this rater yet."""


class AlreadyVotedError(StudyError):
    """A second vote by the same rater on the same item."""


class RateLimitedError(StudyError):
    """Too many requests from one rater or one client address."""

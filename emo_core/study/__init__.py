"""A blind pairwise user study of captions: studies, items, raters, votes and their statistics.

    python -m emo_core.study create humour50 --pairs pairs.csv
    python -m emo_core.study invite humour50 --raters 30      # prints 30 personal links
    python -m emo_core.study results humour50 --json

Raters vote on the app's ``/vote`` page (``ui/vote_page.py``), which calls ``VoteDesk``; the
researcher reads ``study_results``. Everything lives in the shared store (part ``study``).
"""

from .errors import (AlreadyVotedError, InvalidTokenError, PairsFileError, RateLimitedError, StudyClosedError,
                     StudyError, StudyNameError, UnknownItemError, UnknownStudyError)
from .pairs import PAIR_COLUMNS, join_caption_files, read_pairs
from .results import (EXPORT_COLUMNS, chart_figure, export_votes, load_votes, results_text, study_results,
                      write_chart)
from .schema import images_dir, study_store
from .studies import (StudyInfo, close_study, create_study, invite_raters, list_studies, revoke_rater,
                      study_info)
from .voting import CHOICES, Progress, VoteDesk, VoteItem

__all__ = [
    "AlreadyVotedError", "CHOICES", "chart_figure", "EXPORT_COLUMNS", "InvalidTokenError", "PAIR_COLUMNS", "PairsFileError",
    "Progress", "RateLimitedError", "StudyClosedError", "StudyError", "StudyInfo", "StudyNameError",
    "UnknownItemError", "UnknownStudyError", "VoteDesk", "VoteItem", "close_study", "create_study", "export_votes",
    "images_dir", "invite_raters", "join_caption_files", "list_studies", "load_votes", "read_pairs", "results_text",
    "revoke_rater", "study_info", "study_results", "study_store", "write_chart",
]

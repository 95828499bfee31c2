"""The review desk's library: import generator runs, hand out samples, record decisions, measure agreement.

    from emo_core.review import ReviewDesk, import_run, accepted_versions
    report = import_run(store, Path("runs/emoset-1"), overlap=0.10)
    desk = ReviewDesk(store, lease_seconds=900)
    item = desk.next_item("alice")
    desk.decide(item.item_id, "alice", "reject", reason="wrong emotion")
    accepted_versions(data_dir, report.run_id)   # {sample_id: accepted sample}, for the generator's export

Command line: ``python -m emo_core.review import DIR`` and ``python -m emo_core.review add-reviewer NAME``.
"""

from .agreement import cohen_kappa, edit_distance
from .conversation_text import ConversationFormatError, from_text, to_text
from .dashboard import accepted_versions, dashboard, decision_rows
from .queue import ACTIONS, REJECT_REASONS, Conflict, Opinion, ReviewDesk, ReviewError, ReviewItem
from .runs import SAMPLE_TYPES, ImportReport, RunFolderError, import_run, read_run
from .sample_view import attribute_rows, caption

__all__ = [
    "ACTIONS", "REJECT_REASONS", "SAMPLE_TYPES", "Conflict", "ConversationFormatError", "ImportReport", "Opinion",
    "ReviewDesk", "ReviewError", "ReviewItem", "RunFolderError", "accepted_versions", "attribute_rows", "caption",
    "cohen_kappa", "dashboard", "decision_rows", "edit_distance", "from_text", "import_run", "read_run", "to_text",
]

"""The review desk's tables in the shared store (part ``review``; migrations are append-only).

- ``review_runs``: one row per imported generator run (its folder, image root and run.json).
- ``review_items``: one row per generated sample: the original sample as imported (never changed),
  how many annotators must review it (1, or 2 for the overlap share), its state (pending, accepted,
  rejected, conflict) and, once accepted, which version was accepted (NULL: the original).
- ``review_leases``: who holds which item until when.
- ``review_decisions``: every decision (accept, edit, reject, skip, and adjudications), append-only.
- ``review_versions``: edited conversations; the original stays in ``review_items.sample``.
"""

REVIEW_MIGRATIONS = [
    """
    CREATE TABLE review_runs (
        run_id TEXT PRIMARY KEY,
        folder TEXT NOT NULL,
        image_root TEXT NOT NULL,
        meta TEXT NOT NULL,
        imported_at REAL NOT NULL
    );
    CREATE TABLE review_items (
        item_id INTEGER PRIMARY KEY,
        run_id TEXT NOT NULL REFERENCES review_runs(run_id),
        sample_id TEXT NOT NULL,
        type TEXT NOT NULL,
        label TEXT NOT NULL,
        prompt_version TEXT NOT NULL,
        sample TEXT NOT NULL,
        reviews_needed INTEGER NOT NULL CHECK (reviews_needed IN (1, 2)),
        state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'accepted', 'rejected', 'conflict')),
        accepted_version_id INTEGER REFERENCES review_versions(version_id),
        resolved_by TEXT CHECK (resolved_by IN ('single', 'agreement', 'adjudication')),
        UNIQUE (run_id, sample_id)
    );
    CREATE INDEX review_items_state ON review_items (state, item_id);
    CREATE TABLE review_leases (
        item_id INTEGER NOT NULL REFERENCES review_items(item_id),
        annotator TEXT NOT NULL,
        expires_at REAL NOT NULL,
        PRIMARY KEY (item_id, annotator)
    );
    CREATE INDEX review_leases_annotator ON review_leases (annotator);
    CREATE TABLE review_versions (
        version_id INTEGER PRIMARY KEY,
        item_id INTEGER NOT NULL REFERENCES review_items(item_id),
        annotator TEXT NOT NULL,
        conversations TEXT NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE TABLE review_decisions (
        decision_id INTEGER PRIMARY KEY,
        item_id INTEGER NOT NULL REFERENCES review_items(item_id),
        annotator TEXT NOT NULL,
        action TEXT NOT NULL CHECK (action IN ('accept', 'edit', 'reject', 'skip')),
        adjudication INTEGER NOT NULL DEFAULT 0,
        reason TEXT NOT NULL DEFAULT '',
        note TEXT NOT NULL DEFAULT '',
        version_id INTEGER REFERENCES review_versions(version_id),
        decided_at REAL NOT NULL
    );
    CREATE INDEX review_decisions_item ON review_decisions (item_id, annotator);
    CREATE INDEX review_decisions_annotator ON review_decisions (annotator, action);
    """,
]

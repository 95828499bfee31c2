"""The generator's token and cost ledger (``ledger.json`` in the run folder) and its spending limits.

Counted per sample type and in total, over every invocation of the run: requests sent (``calls``),
of which repeats after a failure (``retries``), requests that got no answer (``failed_calls``), prompt
and answer tokens as the endpoint reports them, requests whose answer reported no usage
(``usage_missing``: their cost is unknown and not in ``cost_usd``), and the cost at the configured
prices. Each invocation is also listed with its own counts and how it ended.

Limits apply to one invocation: ``max_calls`` requests, and ``budget_usd``: a request starts only if the
spend so far, plus what the requests in flight may still cost, plus the most this one may cost (its
prompt, estimated from its length or the largest prompt of its type seen so far, and ``max_tokens`` of
answer) stays within the budget. So the budget is not overrun by requests already on their way.

The file is replaced atomically, at most every ``SAVE_INTERVAL_S`` and at the end; a run killed with
SIGKILL can lose the counts of its last fraction of a second.
"""

from __future__ import annotations

import json
import os
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

SAVE_INTERVAL_S = 0.25
CHARS_PER_TOKEN_ESTIMATE = 3.0  # a prompt's token count before the endpoint has reported one (on the high side)
COUNTS = ("calls", "retries", "failed_calls", "tokens_in", "tokens_out", "usage_missing", "cost_usd")


class LimitReached(Exception):
    """No further request may start in this invocation (budget or call limit); ``str`` says which."""


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _zero() -> dict:
    return {name: 0 for name in COUNTS} | {"cost_usd": 0.0}


class Ledger:
    def __init__(self, path: Path, price_input_per_1k: float, price_output_per_1k: float, max_tokens: int,
                 budget_usd: float | None = None, max_calls: int | None = None):
        self.path = Path(path)
        self.prices = (price_input_per_1k, price_output_per_1k)
        self.max_tokens = max_tokens
        self.budget_usd, self.max_calls = budget_usd, max_calls
        stored = json.loads(self.path.read_text()) if self.path.exists() else {}
        self.per_type: dict[str, dict] = {t: _zero() | counts for t, counts in stored.get("per_type", {}).items()}
        self.invocations: list[dict] = stored.get("invocations", [])
        self.session = _zero() | {"started": now_iso(), "finished": None, "status": "running",
                                  "budget_usd": budget_usd, "max_calls": max_calls}
        self.invocations.append(self.session)
        self._reserved = 0.0
        self._prompt_tokens: dict[str, int] = {}
        self._lock = threading.Lock()
        self._saved_at = 0.0

    # -- requests ---------------------------------------------------------------------------------

    def reserve(self, sample_type: str, prompt_chars: int, retry: bool) -> float:
        """Counts a request about to be sent and returns the cost reserved for it; raises ``LimitReached``."""
        price_in, price_out = self.prices
        with self._lock:
            if self.max_calls is not None and self.session["calls"] >= self.max_calls:
                raise LimitReached(f"the call limit is reached (--max-calls {self.max_calls})")
            prompt_tokens = max(self._prompt_tokens.get(sample_type, 0), prompt_chars / CHARS_PER_TOKEN_ESTIMATE)
            reserve = (prompt_tokens * price_in + self.max_tokens * price_out) / 1000
            if self.budget_usd is not None and self.session["cost_usd"] + self._reserved + reserve > self.budget_usd:
                raise LimitReached(f"the budget is reached: ${self.session['cost_usd']:.4f} spent of "
                                   f"${self.budget_usd:g} (--budget-usd), and the next request may cost up to "
                                   f"${reserve:.4f}")
            self._reserved += reserve
            for counts in (self._type(sample_type), self.session):
                counts["calls"] += 1
                counts["retries"] += int(retry)
            return reserve

    def settle(self, sample_type: str, reserved: float, tokens_in: int | None, tokens_out: int | None,
               answered: bool) -> float:
        """Books a finished request; returns its cost (0 when it had no answer or reported no usage)."""
        price_in, price_out = self.prices
        cost = 0.0
        with self._lock:
            self._reserved -= reserved
            for counts in (self._type(sample_type), self.session):
                if not answered:
                    counts["failed_calls"] += 1
                elif tokens_in is None or tokens_out is None:
                    counts["usage_missing"] += 1
                else:
                    cost = (tokens_in * price_in + tokens_out * price_out) / 1000
                    counts["tokens_in"] += tokens_in
                    counts["tokens_out"] += tokens_out
                    counts["cost_usd"] += cost
            if answered and tokens_in is not None:
                self._prompt_tokens[sample_type] = max(self._prompt_tokens.get(sample_type, 0), tokens_in)
        self.save(force=False)
        return cost

    def _type(self, sample_type: str) -> dict:
        return self.per_type.setdefault(sample_type, _zero())

    # -- the file ---------------------------------------------------------------------------------

    def totals(self) -> dict:
        totals = _zero()
        for counts in self.per_type.values():
            for name in COUNTS:
                totals[name] += counts[name]
        return totals

    def finish(self, status: str, lowest_concurrency: int | None = None) -> None:
        with self._lock:
            self.session.update(finished=now_iso(), status=status)
            if lowest_concurrency is not None:
                self.session["lowest_concurrency"] = lowest_concurrency
        self.save(force=True)

    def to_dict(self) -> dict:
        price_in, price_out = self.prices
        return {"currency": "USD", "prices_per_1k_tokens": {"input": price_in, "output": price_out},
                "totals": _rounded(self.totals()), "per_type": {t: _rounded(c) for t, c in sorted(self.per_type.items())},
                "invocations": [_rounded(i) for i in self.invocations]}

    def save(self, force: bool = True) -> None:
        with self._lock:
            if not force and time.monotonic() - self._saved_at < SAVE_INTERVAL_S:
                return
            self._saved_at = time.monotonic()
            text = json.dumps(self.to_dict(), indent=2)
            temporary = self.path.with_name(self.path.name + ".tmp")
            temporary.write_text(text)
            os.replace(temporary, self.path)


def _rounded(counts: dict) -> dict:
    return {k: round(v, 6) if isinstance(v, float) else v for k, v in counts.items()}

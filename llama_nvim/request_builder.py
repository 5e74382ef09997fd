"""From a local context to the /infill body: layout, extra context, token budget.

The local context is laid out for the server's KV cache (layout.py); the ring's
chunks for the user's project fill the extra context within what the server's
context leaves, counted with our tokenizer and corrected by the measured
server-tokens-per-token scale. How a request is shaped is a ``RequestShaping``:
the product's is the default; the benchmark injects its naive baseline.
"""

from __future__ import annotations

import os
from typing import Any

from .backends import Wire
from .config import Config
from .context import LocalContext, Snapshot
from .context_cost import ContextCost
from .layout import Layout
from .projects import Place
from .protocol import ExtraChunk, build_infill_body, build_priming_body
from .ring import Chunk, Ring, line_set, relative_name

# Room left in the extra-context budget for tokenizer differences (we count
# with cl100k, the server with the model's own) and the per-request framing.
BUDGET_SLACK = 0.9
BUDGET_FRAMING = 32
# Locally counted tokens measured before the scale is trusted.
_MIN_MEASURED = 200


class RequestShaping:
    """How requests are shaped for the server's KV cache.

    The local context is laid out with the far suffix going last in the extra
    context; ring chunks are sent oldest first, so the prompt only grows at its
    end; chunks enter the ring while the user is idle and are primed then.
    """

    primes_when_idle = True

    def reserves_far_suffix(self, config: Config) -> bool:
        """True if the far suffix goes into the extra context (see layout.py)."""
        return config.n_suffix_fim < config.n_suffix

    def local_part(
        self, layout: Layout, snapshot: Snapshot, context: LocalContext, filename: str, scale: float
    ) -> tuple[LocalContext, ExtraChunk | None]:
        """The local context to send, and the far suffix (or None)."""
        placed = layout.place(snapshot, filename, scale)
        return placed.local, placed.far_suffix

    def order(self, chunks: list[Chunk]) -> list[Chunk]:
        """The ring's chunks in the order sent."""
        return chunks


class PlainShaping(RequestShaping):
    """For servers other than /infill (backends.py): no cache layout, no priming.

    The local context goes whole into the FIM prefix and suffix (no far suffix
    in the extra context), chunks enter the ring at once, oldest first, so the
    prompt's start, which holds them, changes least.
    """

    primes_when_idle = False

    def reserves_far_suffix(self, config: Config) -> bool:
        """Never: the whole suffix goes into the prompt's suffix."""
        return False

    def local_part(
        self, layout: Layout, snapshot: Snapshot, context: LocalContext, filename: str, scale: float
    ) -> tuple[LocalContext, ExtraChunk | None]:
        """The local context as built."""
        return context, None


def shaping_for(wire: Wire) -> RequestShaping:
    """The product's shaping for a server kind: the cache layout on /infill only."""
    return RequestShaping() if wire.cache_layout else PlainShaping()


class RequestBuilder:
    """Builds the /infill bodies of requests and priming."""

    def __init__(self, config: Config, ring: Ring, layout: Layout, shaping: RequestShaping) -> None:
        self.config = config
        self.shaping = shaping
        self.wire = Wire.from_config(config)
        self.n_ctx = 0  # the server's context size, 0 until /props tells it
        # The slot every body names: the configured one until a lease pins
        # this editor to its own (slot_lease.py).
        self.id_slot = config.id_slot
        self._ring = ring
        self._layout = layout
        # Server tokens per counted token: cl100k is close to Qwen's tokenizer,
        # but not to every model's; admitted chunks are measured with the
        # server's /tokenize to correct the budget.
        self._measured_server = 0
        self._measured_local = 0
        # The ring's cap from what cached tokens cost (the pacer's, which measures it).
        self.context_cost = ContextCost()

    def tokenizer_loaded(self) -> None:
        """The exact tokenizer replaced the estimate: count lines afresh."""
        self._layout.forget_counts()

    def measured(self, server_tokens: int, local_tokens: int) -> None:
        """Record a chunk counted by both tokenizers."""
        self._measured_server += server_tokens
        self._measured_local += local_tokens

    @property
    def token_scale(self) -> float:
        """Server tokens per locally counted token, as measured so far."""
        if self._measured_local < _MIN_MEASURED:
            return 1.0
        return max(0.25, self._measured_server / self._measured_local)

    def extra_budget(self, *, rise: bool = False) -> tuple[int, int]:
        """(tokens of the server's context left for extra context, the ring's share).

        ``rise``: with a higher cap the ring's budget probe decided (context_cost.py).
        Only priming, while the user is idle, raises it: where nothing primes,
        every request does.
        """
        rise = rise or not self.shaping.primes_when_idle
        return self._budgets(self.context_cost.cap(self.config, rise=rise))

    def _budgets(self, cap: int | None) -> tuple[int, int]:
        config = self.config
        n_ctx_budget = self.n_ctx - config.n_batch - 2 * config.n_predict
        if self.shaping.reserves_far_suffix(config):
            # Always the same reservation, whether this request has a far
            # suffix or not: the ring's share must not change with the cursor.
            n_ctx_budget -= self._layout.far_budget
        ring_budget = int(n_ctx_budget * BUDGET_SLACK / self.token_scale) - BUDGET_FRAMING
        if cap is not None:
            ring_budget = min(ring_budget, int(cap / self.token_scale))
        return n_ctx_budget, ring_budget

    def rise_tokens(self, project: str) -> int:
        """Server tokens of ``project``'s ring chunks under a pending higher cap (0: none).

        A priming that raises the cap recomputes at least these.
        """
        if not self.n_ctx or not self.context_cost.rise_pending(self.config):
            return 0
        _, budget = self._budgets(self.context_cost.decision.cap)
        return round(self._ring.tokens_within(project, budget) * self.token_scale)

    def extra(
        self,
        project: str,
        context: LocalContext | None,
        far_suffix: ExtraChunk | None = None,
        *,
        rise: bool = False,
    ) -> list[ExtraChunk]:
        """The ring's chunks for this request, then the far suffix, within the budget."""
        far = [far_suffix] if far_suffix is not None else []
        if not self.n_ctx:
            # No ring chunks until /props tells the budget; the far suffix is
            # part of the local context and never left out for that.
            return far
        n_ctx_budget, budget = self.extra_budget(rise=rise)
        if budget <= 0:
            return far if n_ctx_budget > 0 else []
        local = line_set(context.text) if context is not None else None
        chunks = self.shaping.order(self._ring.extra_for(project, budget, local))
        return [chunk.to_extra() for chunk in chunks] + far

    def laid_out(
        self, project: str, snapshot: Snapshot, context: LocalContext, *, rise: bool = False
    ) -> tuple[LocalContext, list[ExtraChunk]]:
        """What a request from ``snapshot`` sends: its local part and its extra context."""
        filename = relative_name(snapshot.filename, project)
        local, far = self.shaping.local_part(
            self._layout, snapshot, context, filename, self.token_scale
        )
        return local, self.extra(project, context, far, rise=rise)

    def body(
        self,
        project: str,
        snapshot: Snapshot,
        context: LocalContext,
        *,
        t_max_predict_ms: int,
        n_predict: int | None = None,
        explore: bool = False,
    ) -> dict[str, Any]:
        """The /infill body for ``snapshot``: local context laid out, extra context added.

        ``n_predict``: if not the configured one (pacing.py). The extra-context
        budget keeps reserving the configured one, so that it stays the same.
        """
        local, extra = self.laid_out(project, snapshot, context)
        body = build_infill_body(
            local,
            extra,
            self.config,
            n_predict=self.config.n_predict if n_predict is None else n_predict,
            t_max_predict_ms=t_max_predict_ms,
            explore=explore,
            id_slot=self.id_slot,
        )
        # A template also names the file and the project (backends.py).
        path = relative_name(snapshot.filename, project)
        return self.wire.annotate(body, path, os.path.basename(project.rstrip("/")))

    def priming_body(
        self, project: str, last: Place | None, *, with_local: bool = False, rise: bool = False
    ) -> dict[str, Any] | None:
        """A body that has the server compute ``project``'s extra context now, or None.

        The chunks are those a request from where the user last typed would
        send (with the far suffix): chunks that requests leave out but priming
        put in would cost the next request everything after them.
        ``with_local``: the local context from there too, so that a request
        back there recomputes only the line it changed, not the lines above.
        ``rise``: a pending higher cap applies from this body on.
        """
        local: LocalContext | None = None
        if last is not None and last.project == project:
            local, extra = self.laid_out(project, last.snapshot, last.context, rise=rise)
        else:
            extra = self.extra(project, None, rise=rise)
        if not extra:
            return None
        return build_priming_body(
            extra, self.config, local=local if with_local else None, id_slot=self.id_slot
        )

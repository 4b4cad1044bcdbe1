"""Micro-batching for the JSON API: concurrent turns share one forward pass.

Each request thread checks its request, takes its conversation's lock, reads and plans the turn
(:meth:`SearchService.plan`), then hands the plan to a :class:`MicroBatcher`. The batcher's one
worker gathers the plans waiting at that moment (the first waits at most ``max_wait_ms`` for
others, at most ``max_size`` in all) and draws and embeds them together
(:meth:`QueryPath.draw_many`, :meth:`QueryPath.embed_many`); each request thread then ranks and
records its own turn. Nothing holds one lock around a whole turn: a conversation's lock keeps its
turns in order, and the sentence encoder's lock (:func:`~fashiongan.search.query.encoder_lock`)
guards only the tokenizer. A batched answer equals the one the request gets alone.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any, Generic, TypeVar

import numpy as np
import torch

from fashiongan.search.contract import check_request
from fashiongan.search.query import QueryPlan, embedded_pictures
from fashiongan.search.ranking import Ranking
from fashiongan.search.service import SearchResult, SearchService

log = logging.getLogger(__name__)

Item = TypeVar("Item")
Answer = TypeVar("Answer")
_STOP = object()


class MicroBatcher(Generic[Item, Answer]):
    """Calls ``run`` on batches of the items that many threads submit.

    Args:
        run: items → one answer per item, in order. When it raises, each item of the batch is
            run alone, so one bad item fails only its own caller.
        max_size: the most items in one batch.
        max_wait_ms: how long the first item of a batch waits for others (0: take only those
            already waiting).
    """

    def __init__(
        self, run: Callable[[list[Item]], list[Answer]], max_size: int, max_wait_ms: float
    ) -> None:
        if max_size < 1 or max_wait_ms < 0:
            raise ValueError(f"max_size ≥ 1 and max_wait_ms ≥ 0, got {max_size}, {max_wait_ms}")
        self.run = run
        self.max_size = max_size
        self.max_wait_s = max_wait_ms / 1000.0
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._start = threading.Lock()
        self._worker: threading.Thread | None = None
        self._closed = False
        self.batches = 0  # batches run and items answered, for tests and logs
        self.items = 0

    def __call__(self, item: Item) -> Answer:
        """The item's answer (blocks until its batch has run); re-raises the item's error."""
        return self.submit(item).result()

    def submit(self, item: Item) -> Future:
        """Queue ``item``; the future holds its answer (the worker starts on the first item)."""
        future: Future = Future()
        with self._start:
            if self._closed:
                raise RuntimeError("the batcher is closed")
            if self._worker is None:
                self._worker = threading.Thread(target=self._loop, name="micro-batcher")
                self._worker.daemon = True  # never keeps the process alive on its own
                self._worker.start()
            self._queue.put((item, future))
        return future

    def close(self) -> None:
        """Answer what is queued, then stop the worker."""
        with self._start:
            self._closed = True
            worker = self._worker
        if worker is not None:
            self._queue.put(_STOP)
            worker.join()

    def _loop(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is _STOP:
                return
            batch, stopping = self._gather(first)
            self._answer(batch)

    def _gather(self, first) -> tuple[list, bool]:
        """``first`` and whatever joins it within the wait, up to ``max_size``; and whether a
        stop came in meanwhile."""
        batch = [first]
        deadline = time.monotonic() + self.max_wait_s
        while len(batch) < self.max_size:
            remaining = deadline - time.monotonic()
            try:
                entry = self._queue.get(timeout=remaining) if remaining > 0 else (
                    self._queue.get_nowait()
                )  # fmt: skip
            except queue.Empty:
                break
            if entry is _STOP:
                return batch, True
            batch.append(entry)
        return batch, False

    def _answer(self, batch: list) -> None:
        items = [item for item, _ in batch]
        try:
            answers = self.run(items)
            if len(answers) != len(items):
                raise RuntimeError(f"{len(answers)} answers for {len(items)} items")
            outcomes = [(answer, None) for answer in answers]
        except Exception as err:  # one bad item must not fail the others: each runs alone
            outcomes = [(None, err)] if len(items) == 1 else [self._alone(i) for i in items]
        self.batches += 1
        self.items += len(items)
        for (_, future), (answer, error) in zip(batch, outcomes, strict=True):
            if error is None:
                future.set_result(answer)
            else:
                future.set_exception(error)

    def _alone(self, item: Item) -> tuple[Any, BaseException | None]:
        try:
            return self.run([item])[0], None
        except Exception as err:  # handed to the item's caller
            return None, err


class BatchedSearch:
    """The service's conversation turns with their draw and embed steps micro-batched.

    Args:
        service: the search service (its models, settings and conversations).
        max_batch: the most turns drawn in one forward pass (``search_app.api_max_batch``).
        max_wait_ms: the wait for a batch to fill (``search_app.api_max_wait_ms``).
    """

    def __init__(self, service: SearchService, max_batch: int, max_wait_ms: float) -> None:
        self.service = service
        self.batcher: MicroBatcher[QueryPlan, tuple] = MicroBatcher(
            self._forward, max_batch, max_wait_ms
        )

    def converse(self, conversation: Any = None, text: Any = None, **options: Any) -> SearchResult:
        """One turn, as :meth:`SearchService.converse` answers it (text only; options ``k``,
        ``seed``, ``pick``, ``n_images``, ``model``).

        Raises:
            SearchInputError: as :meth:`SearchService.converse`.
        """
        service = self.service
        request = check_request(service.query, text, conversation=conversation, **options)
        if request.pick is not None and request.text is None:  # nothing is drawn
            return service.converse(conversation, text, **options)
        session = service.session(request.conversation)
        with session.lock:
            started = time.perf_counter()
            reference = session.reference
            if request.pick is not None:
                reference = service.catalog_reference(request.pick)
            plan = service.plan(request, reference)
            mark = time.perf_counter()
            images, vector, forward_ms = self.batcher(plan)
            timings = {**plan.timings_ms, **forward_ms, "batch": _ms_since(mark)}
            ranking = Ranking([])
            vector = vector if vector is not None else service.path.blank_query(plan)
            if vector is not None:
                mark = time.perf_counter()
                ranking = service.path.rank(plan, vector)
                timings["search"] = _ms_since(mark)
            timings["total"] = _ms_since(started)
            return service.record(session, plan, images, ranking, timings)

    def close(self) -> None:
        self.batcher.close()

    def _forward(
        self, plans: Sequence[QueryPlan]
    ) -> list[tuple[torch.Tensor | None, np.ndarray | None, dict[str, float]]]:
        """Each plan's drawing, query vector and the batch's step times, one pass per step."""
        path = self.service.path
        mark = time.perf_counter()
        drawn = path.draw_many(plans)
        generate_ms = _ms_since(mark)
        pictures = [embedded_pictures(plan, d) for plan, d in zip(plans, drawn, strict=True)]
        mark = time.perf_counter()
        vectors = iter(path.embed_many([p for p in pictures if p is not None]))
        times = {"generate": generate_ms, "embed": _ms_since(mark)}
        return [
            (images, None if p is None else next(vectors), times)
            for images, p in zip(drawn, pictures, strict=True)
        ]


def _ms_since(mark: float) -> float:
    return (time.perf_counter() - mark) * 1000.0

"""Records -> the fewest MLflow requests that stay inside ``log_batch``'s limits.

Records are the tuples described in ``_records``. Metrics and tags are coalesced, in order,
into batches; anything else travels alone and closes the batch before it, so the store sees
records in the order they were logged.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .records import (ARTIFACT, END, FILE, MAX_BYTES, MAX_ENTITIES, MAX_METRICS, MAX_TAGS, METRIC,  # noqa: F401
                      PARAM, SERIES, TAG)

_METRIC_OVERHEAD = 80  # JSON framing of one metric: value, timestamp, step, field names
_TAG_OVERHEAD = 30


@dataclass
class Batch:
    """One ``log_batch`` request: ``(seq, key, value, ts, step)`` metrics, ``(seq, key, value)`` tags."""

    metrics: list = field(default_factory=list)
    tags: list = field(default_factory=list)
    upto: int = 0  # every record with seq <= upto is complete once this batch is sent
    size: int = 0
    # (seq, step of its next point) when the batch ends inside a series record: sent, the
    # record is delivered up to there (``JournalLike.advance``)
    partial: tuple[int, int] | None = None

    def seqs(self) -> set[int]:
        return {m[0] for m in self.metrics} | {t[0] for t in self.tags}

    def split(self) -> tuple["Batch", "Batch"]:
        """Two halves, to isolate a record the store rejects."""
        entries = [("m", m) for m in self.metrics] + [("t", t) for t in self.tags]
        half = len(entries) // 2
        halves = []
        for part in (entries[:half], entries[half:]):
            halves.append(
                Batch(
                    metrics=[e for k, e in part if k == "m"],
                    tags=[e for k, e in part if k == "t"],
                    upto=self.upto,
                )
            )
        return halves[0], halves[1]

    def __len__(self) -> int:
        return len(self.metrics) + len(self.tags)


@dataclass
class Single:
    """A record that is its own request (an upload, the end of the run)."""

    record: tuple
    upto: int


def pack(records):
    """Yield ``Batch`` and ``Single`` requests covering ``records`` in order."""
    batch = Batch()
    tag_keys: set[str] = set()
    done = records[0][0] - 1 if records else 0  # highest seq fully packed so far

    def full(extra_metrics: int, extra_tags: int, extra_bytes: int) -> bool:
        return (
            len(batch.metrics) + extra_metrics > MAX_METRICS
            or len(batch.tags) + extra_tags > MAX_TAGS
            or len(batch) + extra_metrics + extra_tags > MAX_ENTITIES
            or batch.size + extra_bytes > MAX_BYTES
        )

    for record in records:
        seq, kind = record[0], record[1]
        if kind == METRIC:
            _, _, key, value, ts, step = record
            size = len(key) + _METRIC_OVERHEAD
            if len(batch) and full(1, 0, size):
                batch.upto = done
                yield batch
                batch, tag_keys = Batch(), set()
            batch.metrics.append((seq, key, value, ts, step))
            batch.size += size
        elif kind == SERIES:
            _, _, key, values, ts, first = record
            size = len(key) + _METRIC_OVERHEAD
            for i, value in enumerate(values):
                if len(batch) and full(1, 0, size):
                    batch.upto = done
                    if i:
                        batch.partial = (seq, first + i)
                    yield batch
                    batch, tag_keys = Batch(), set()
                batch.metrics.append((seq, key, value, ts, first + i))
                batch.size += size
        elif kind == TAG:
            _, _, key, value = record
            size = len(key) + len(value) + _TAG_OVERHEAD
            if len(batch) and (key in tag_keys or full(0, 1, size)):  # same key twice: keep both, in order
                batch.upto = done
                yield batch
                batch, tag_keys = Batch(), set()
            batch.tags.append((seq, key, value))
            tag_keys.add(key)
            batch.size += size
        else:
            if len(batch):
                batch.upto = done
                yield batch
                batch, tag_keys = Batch(), set()
            yield Single(record, seq)
        done = seq
    if len(batch):
        batch.upto = done
        yield batch

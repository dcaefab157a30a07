"""Trim TensorBoard event files to a step, so that a resumed stage does not log its steps twice.

A session killed after its last checkpoint has already written events for steps the resumed
session will log again. TensorBoard's own reader hides such "orphaned" steps only if the new
writer says so, which SB3's logger does not. The event files are TFRecord files (a length, its
masked CRC, the serialized ``Event``, its masked CRC, per record); records are copied byte for
byte, so their checksums stay valid, and only the dropped records are parsed. Written by hand
because neither tensorboard nor torch offers rewriting an event file.
"""

from __future__ import annotations

import struct
from pathlib import Path

from tensorboard.compat.proto import event_pb2

from sb3_ext.common.atomic import atomic_open

_HEADER = struct.Struct("<QI")  # length, masked CRC of the length
_FOOTER = 4  # masked CRC of the data


def _records(data: bytes) -> list[bytes]:
    """Whole records of a TFRecord file; a record cut short by a kill ends the list."""
    records, offset = [], 0
    while offset + _HEADER.size <= len(data):
        (length, _) = _HEADER.unpack_from(data, offset)
        end = offset + _HEADER.size + length + _FOOTER
        if end > len(data):
            break
        records.append(data[offset:end])
        offset = end
    return records


def _step(record: bytes) -> int:
    event = event_pb2.Event()
    event.ParseFromString(record[_HEADER.size : -_FOOTER])
    return int(event.step)


def trim_event_files(folder: Path, up_to_step: int) -> int:
    """Drop every event after ``up_to_step`` from the event files under ``folder``.

    :return: how many events were dropped.
    """
    dropped = 0
    for path in sorted(folder.glob("**/events.out.tfevents.*")):
        records = _records(path.read_bytes())
        kept = [record for record in records if _step(record) <= up_to_step]
        if len(kept) == len(records) and path.stat().st_size == sum(map(len, records)):
            continue
        dropped += len(records) - len(kept)
        with atomic_open(path, "wb") as handle:
            handle.write(b"".join(kept))
    return dropped

"""datetime -> google.protobuf.Timestamp, fast enough for list pages."""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def timestamp_fields(moment: datetime | None) -> dict[str, int] | None:
    """Timestamp's fields as a dict, for a message constructor
    (`Interaction(timestamp=...)`, which then builds the field in place instead
    of copying a Timestamp in); None stays None (an unset field). Plain
    arithmetic: Timestamp.FromDatetime is four times slower, and a list page
    converts several per row."""
    if moment is None:
        return None
    since = moment - _EPOCH
    return {"seconds": since.days * 86_400 + since.seconds, "nanos": since.microseconds * 1_000}


def to_timestamp(moment: datetime | None) -> Timestamp | None:
    """The same as a Timestamp message; None stays None."""
    fields = timestamp_fields(moment)
    return None if fields is None else Timestamp(**fields)

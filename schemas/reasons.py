"""Dead-letter reason codes (design.md §4): the `reason` field of DeadLetter records.

The JVM operators write the same strings (operators/jvm/.../DeadLetterRecord.java).
"""

MALFORMED = "MALFORMED"  # undecodable bytes, kept raw with their offset
UNKNOWN_REQUEST = "UNKNOWN_REQUEST"  # no impression has the click's request_id (within the click horizon)
ITEM_NOT_SHOWN = "ITEM_NOT_SHOWN"  # the clicked item is not in the impression's slots
OUTSIDE_WINDOW = "OUTSIDE_WINDOW"  # the click is outside [impression time, + attribution window]
DUPLICATE = "DUPLICATE"  # another click on the same (request_id, item_id) counted first
DUPLICATE_IMPRESSION = "DUPLICATE_IMPRESSION"  # a second impression with a request_id already seen
LATE = "LATE"  # the record's window or outcome was already final when it arrived
OUT_OF_RANGE = "OUT_OF_RANGE"  # event_time too far ahead of the record's Kafka timestamp (--max-event-time-skew)

CLICK_REASONS = (UNKNOWN_REQUEST, ITEM_NOT_SHOWN, OUTSIDE_WINDOW, DUPLICATE)
ALL_REASONS = (MALFORMED, *CLICK_REASONS, DUPLICATE_IMPRESSION, LATE, OUT_OF_RANGE)

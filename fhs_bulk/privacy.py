"""Keeping customers' phone numbers out of logs and terminal output."""

from __future__ import annotations

import logging
import re

# An Indian mobile number standing alone (not inside an order ID or other longer digit run),
# with an optional +91 / 0 prefix.
_PHONE = re.compile(r"(?<![0-9])(?:\+91[\s-]?|0)?([6-9][0-9])[\s-]?([0-9]{4})[\s-]?([0-9]{2})([0-9]{2})(?![0-9])")


def mask_phone(text: str) -> str:
    """'9876543210' -> '98******10'."""
    return _PHONE.sub(lambda m: f"{m.group(1)}******{m.group(4)}", text)


class PhoneMaskFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_phone(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True

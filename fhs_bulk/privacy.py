"""Keeping customers' phone numbers out of logs and terminal output."""

from __future__ import annotations

import logging
import re

# An Indian mobile number standing alone (not inside an order ID or other longer digit run),
# with an optional +91 / 0 prefix.
_PHONE = re.compile(r"(?<![0-9A-Za-z])(?:\+91[\s-]?|0)?([6-9](?:[\s-]?[0-9]){9})(?![0-9])")


def _mask(match: re.Match[str]) -> str:
    digits = re.sub(r"[^0-9]", "", match.group(1))
    return f"{digits[:2]}******{digits[-2:]}"


def mask_phone(text: str) -> str:
    """'9876543210' -> '98******10'."""
    return _PHONE.sub(_mask, text)


class PhoneMaskFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_phone(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True

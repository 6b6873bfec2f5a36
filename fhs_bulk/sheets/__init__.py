"""Sheets: reading, writing, in-place xlsx edits, Google Sheets and the sheet contracts."""

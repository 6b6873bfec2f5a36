"""The nightly bulk upload."""

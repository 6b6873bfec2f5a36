"""Checking an order sheet before anything is sent: findings as data."""

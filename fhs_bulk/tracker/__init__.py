"""The 'Tracker for installation (ODS)' sheet: load, update, reconcile, report."""

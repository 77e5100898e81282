"""Closing the loop: what review learns goes back to scanners (signed webhooks), to hash-list
owners (calibration, feedback, exports) and to dataset vendors (notices)."""

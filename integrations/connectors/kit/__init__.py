"""What every connector shares: webhook signatures and replay windows, the idempotency marker, create-once, text shaping.

A connector (built in or pip-installed) imports these instead of writing its own; the registry never loads this package
as a vendor.
"""

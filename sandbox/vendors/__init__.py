"""Vendor stand-ins. Each module defines VENDOR, blueprints() and optionally seed()."""

"""Marketplace listings for systems without a usable public API: what Bastion can import from them, what it cannot and why."""

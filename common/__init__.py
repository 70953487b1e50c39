"""Shared building blocks used by every Bastion app: encryption, errors, tenancy, pagination."""

"""Custom connectors built by an organization's ops staff: declarative specs, versioned, per organization."""

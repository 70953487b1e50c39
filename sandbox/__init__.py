"""The vendor sandbox (a separate Flask process; it never imports Django)."""

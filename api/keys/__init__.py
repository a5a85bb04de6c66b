"""API keys: creation (shown once), hashing, revocation and resolution for authentication."""

"""HTTP plumbing shared by every feature (no feature logic here)."""

"""HTTP helpers shared by every feature."""

"""The tenant-facing endpoints that call Claude: /v1/messages (Anthropic-compatible) and /chat."""

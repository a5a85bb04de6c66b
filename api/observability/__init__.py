"""Operational visibility: Prometheus metrics (`GET /metrics`)."""

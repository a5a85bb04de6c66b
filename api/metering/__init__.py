"""Metering: observe upstream responses and turn them into usage and cost."""

"""Tenants and their plans."""

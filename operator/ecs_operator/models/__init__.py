"""Pydantic models of spec and status; the single source of the CRD schemas."""

"""Thin Kopf glue: read state from the caches, call core, apply the result."""

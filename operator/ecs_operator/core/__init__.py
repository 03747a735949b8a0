"""Pure decisions: no I/O and no kopf, kubernetes, aiohttp or sandbox imports."""

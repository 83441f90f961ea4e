"""The API's resource-agnostic layer: credentials, the HTTP client and its answer classifier,
the shared rate budget, the worker pool, windows, paging decisions, timestamps and per-bot state."""

"""The `kore-sessions` command: its parser, the commands, the demo and the id lookup."""

from kore_sessions.cli.parser import main

__all__ = ["main"]

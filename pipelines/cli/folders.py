"""The folders the commands write into (a report's, an export's), checked before any work."""

from __future__ import annotations

from pathlib import Path

from kore_sessions.source import ConfigError


def check_folders_on_the_way(folder: Path) -> None:
    """Refuse, in one line, a folder to write into when it, or the nearest part of its path that
    exists, is a file."""
    for place in (folder, *folder.parents):
        if place.exists():
            if not place.is_dir():
                raise ConfigError(f"{place} is a file, not a folder: give a folder to write into")
            return

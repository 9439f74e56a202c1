"""``local.settings.json``: its ``Values`` become environment variables, as Core Tools does.

A variable that is already set wins over the file, so tests and operators can override one
setting with an environment variable without editing the file. The values are never logged
(connection strings and keys live there); only the names are.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, MutableMapping
from pathlib import Path

logger = logging.getLogger("devhost.host")

SETTINGS_FILE = "local.settings.json"
SAMPLE_SETTINGS_FILE = "local.settings.sample.json"


class SettingsFileError(Exception):
    """The settings file is missing, unreadable or not shaped like local.settings.json."""


def find_settings(root: Path) -> Path | None:
    """``local.settings.json`` in ``root``, else the checked-in sample, else nothing."""
    for name in (SETTINGS_FILE, SAMPLE_SETTINGS_FILE):
        if (root / name).is_file():
            return root / name
    return None


def read_values(path: Path) -> dict[str, str]:
    """The ``Values`` map of a settings file; anything but a flat string map is an error."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SettingsFileError(f"settings file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsFileError(f"cannot read settings file {path}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise SettingsFileError(
            f"{path} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None
    if not isinstance(document, dict):
        raise SettingsFileError(f'{path} must hold a JSON object with a "Values" object')
    if document.get("IsEncrypted") is True:
        raise SettingsFileError(f"{path} is encrypted; the local host reads plain values only")
    return _flat_strings(document.get("Values", {}), path)


def _flat_strings(values: object, path: Path) -> dict[str, str]:
    if not isinstance(values, dict):
        raise SettingsFileError(f'{path}: "Values" must be an object of strings')
    for name, value in values.items():
        if not isinstance(value, str):
            raise SettingsFileError(
                f'{path}: "Values".{name} must be a string, not {_json_type(value)}'
            )
    return dict(values)


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return "an object" if isinstance(value, dict) else "an array"


def apply_values(values: Mapping[str, str], environ: MutableMapping[str, str]) -> list[str]:
    """Set every value whose variable is not set yet; return the names that were set."""
    applied = [name for name in values if name not in environ]
    for name in applied:
        environ[name] = values[name]
    kept = len(values) - len(applied)
    logger.info("settings: %d applied, %d already set in the environment", len(applied), kept)
    return applied

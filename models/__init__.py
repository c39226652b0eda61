"""Bundled .tflite models (see MODELS.md), shipped as package data so a wheel install has them too.

The one place that says where models are: ``$EDGEPILOT_MODELS`` when set, else this package's folder.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from edgepilot.pilot.core.errors import ModelError


def models_dir() -> Path:
    """Where the models are: ``$EDGEPILOT_MODELS`` if set (read on every call), else the installed package data."""
    override = os.environ.get("EDGEPILOT_MODELS")
    return Path(override) if override else Path(str(resources.files(__name__)))


def model_path(name: str) -> Path:
    """A bundled model by file name, with a clear error naming the fix when it is missing."""
    path = models_dir() / name
    if not path.is_file():
        raise ModelError(f"model {path} is missing; reinstall edgepilot, restore it with "
                         f"'python scripts/extract_models.py', or point $EDGEPILOT_MODELS at a folder that has it")
    return path

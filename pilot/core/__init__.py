"""The vehicle-agnostic core: it imports nothing else of edgepilot."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("edgepilot")  # the version lives in pyproject.toml only
except PackageNotFoundError:  # running from a checkout that was never installed
    __version__ = "0+unknown"

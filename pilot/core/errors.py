"""The one small error tree. The CLI turns any of these into one clear line and a non-zero exit."""


class EdgepilotError(Exception):
    """Base of every error edgepilot raises on purpose."""


class VehicleError(EdgepilotError, RuntimeError):
    """The vehicle refused, failed or is in a state that does not allow the request."""


class LinkLost(VehicleError, ConnectionError):
    """No data from the vehicle for longer than the link timeout."""


class CommandRejected(EdgepilotError, ValueError):
    """A command that is unknown, malformed or out of range; it never reaches a vehicle."""


class ModelError(EdgepilotError, RuntimeError):
    """A model file is missing, corrupt or of the wrong kind."""


class InputError(EdgepilotError, ValueError):
    """Bad user input: a missing or corrupt file, an unknown option value."""

"""edgepilot's brain: vehicle-agnostic messages, hardware layer, loop, safety and behaviours."""

__version__ = "0.1.0"

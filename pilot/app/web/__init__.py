"""The live web cockpit (``--web``): video with overlays, telemetry, controls and a big STOP, served from the run's
own process. See :mod:`edgepilot.pilot.app.web.server`."""

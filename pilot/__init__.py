"""The pilot, in three layers (each imports only what is below it; import-linter checks this in CI):

- :mod:`edgepilot.pilot.app`: the command line and every verb, the demo, doctor, reports, the HUD: wires everything.
- :mod:`edgepilot.pilot.record`: the flight recorder and replay; it knows the core and the parts registry only.
- :mod:`edgepilot.pilot.core`: messages, errors, clock, loop, hardware layer, grammar, safety, behaviours, runner.

Perception (:mod:`edgepilot.vision`, :mod:`edgepilot.voice`) and vehicles (:mod:`edgepilot.drone`,
:mod:`edgepilot.robot_car`, :mod:`edgepilot.sim`) sit between the core and the recorder.
"""

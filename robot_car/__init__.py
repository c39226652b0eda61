"""Raspberry Pi car backend: gpiozero motors, picamera2 camera, lane following."""

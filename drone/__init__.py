"""Tello drone backend over djitellopy."""

"""Tello drone backend: our own UDP link (djitellopy for the SDK's constants), H.264 video with PyAV."""

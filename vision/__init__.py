"""Perception: LiteRT detectors, face identity (dlib), tracking, overlays."""

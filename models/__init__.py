"""Bundled .tflite models (see MODELS.md); shipped as package data so a wheel install has them too."""

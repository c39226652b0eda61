"""Offline speech commands: recognisers (Vosk, PocketSphinx), the spoken grammar, audio sources."""

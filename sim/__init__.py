"""The simulator: a seeded world, a pinhole camera renderer, a simulated drone and car, and a Tello emulator."""

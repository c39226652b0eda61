"""The application: the command line, its verbs, the demo, doctor, reports and HUD. The only layer that imports everything."""

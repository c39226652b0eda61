"""Flight recorder and replay: they know the core and the parts registry, no concrete behaviour or perception."""

"""Chirp's composition root: settings, wiring of adapters into the application, and the CLI."""

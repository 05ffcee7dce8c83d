"""Chirp's Django front end: pages for people, thin views over the application layer."""

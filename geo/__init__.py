"""Geolocation: IP lookup, postal codes, distances, delivery zones."""

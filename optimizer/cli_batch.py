"""Batch commands: sweep, compare, frontier (registered on the main `greenbelt` app)."""

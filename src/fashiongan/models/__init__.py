"""Torch modules, one model family a file."""

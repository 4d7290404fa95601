"""Callbacks of our own. They observe the run; they do not reach into module internals."""

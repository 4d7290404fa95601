"""Glue shared by the entry points: config handling, run outputs, checkpoint I/O."""

"""Captum attributions and faithfulness checks for ``bigmodel.explain``."""

"""LightningDataModules, one module per modality, plus shared split / folder-scan / bad-file helpers."""

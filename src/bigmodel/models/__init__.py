"""LightningModules by task kind. Each owns its loss, metrics and optimizer, and builds its net
from a plain config dict so that checkpoints hold no pickled classes."""

"""Experiment tracking: the W&B logger glue and the run tracking (hyper-parameters, run facts, resume) that
`bigmodel.train` applies to every Lightning logger."""

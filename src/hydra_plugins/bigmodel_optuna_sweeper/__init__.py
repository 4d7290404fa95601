"""bigmodel's Hydra sweeper on current Optuna (``hydra/sweeper=bigmodel_optuna``, used by ``hparams_search=...``).

Why our own: ``hydra-optuna-sweeper`` 1.3 pins optuna 2.10 (2021) and creates its trials where a training job
cannot reach them, so nothing can prune. The study, the trials, the samplers, the pruners and the plots are
Optuna's (``ask``/``tell``, public API); Hydra's launcher runs the jobs. Only the glue is here:

- :mod:`.config`: the ``hydra.sweeper`` config node (registered in Hydra's ConfigStore on plugin scan).
- :mod:`.search_space`: Hydra's sweep grammar (``choice``/``interval``/``range``/``tag(log, ...)``) to
  Optuna distributions, and a trial's parameters back to overrides.
- :mod:`.outcome`: what a finished job means for its trial (COMPLETE, FAIL with a reason, PRUNED).
- :mod:`.sweeper`: the sweep loop with a persistent study (resume), stale-trial recovery and batches.
- :mod:`.trial_context`: hands the running trial to the job (in-process launcher) for pruning.
- :mod:`.report`: best parameters, the table of all trials and Optuna's plots under the sweep dir.

Module-level imports stay light (no optuna): Hydra imports every module of every plugin at start-up.
"""

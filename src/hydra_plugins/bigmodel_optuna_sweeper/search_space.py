"""Hydra's sweep grammar to Optuna distributions, and an Optuna trial's parameters back to Hydra overrides.

=============================  =====================================================================
``key=choice(a, b, c)``, a,b   ``CategoricalDistribution`` (values as Hydra parses them)
``key=interval(lo, hi)``       ``FloatDistribution(lo, hi)``; ``tag(log, interval(...))``: log scale
``key=range(start, stop, s)``  ``IntDistribution(start, last, step=s)`` (``stop`` excluded, as in Python);
                               float ranges and ``shuffle(range(...))``: categorical over the values
``key=value``                  fixed: passed to every job unchanged
=============================  =====================================================================
"""

# no `from __future__ import annotations` here: see config.py (a dataclass in a module Hydra scans)
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override, Transformer


@dataclass
class SearchSpace:
    distributions: dict[str, Any] = field(default_factory=dict)  # key -> optuna distribution
    # key -> the override exactly as typed (re-encoding would break ``~key``, ``${...}`` and quoted values)
    fixed: dict[str, str] = field(default_factory=dict)
    # key -> the override text of each categorical choice, in order (a string choice "x y" stays quoted)
    choice_text: dict[str, list[str]] = field(default_factory=dict)

    def overrides(self, params: dict[str, Any]) -> list[str]:
        """``key=value`` overrides of one trial: its sampled ``params`` plus the fixed values."""
        out = list(self.fixed.values())
        for key, value in params.items():
            if key in self.choice_text:  # the choice's index, by Optuna's own lookup
                text = self.choice_text[key][self.distributions[key].to_internal_repr(value)]
            else:
                text = _number_text(value)
            out.append(f"{key}={text}")
        return out


def parse(arguments: Iterable[str]) -> SearchSpace:
    """Parse ``hydra.sweeper.params`` (as ``key=sweep`` strings) followed by the command line's overrides;
    a later override of the same key wins.

    Raises:
        ValueError: a sweep that Optuna cannot sample (e.g. an empty choice), naming the override.
    """
    space = SearchSpace()
    for override in OverridesParser.create().parse_overrides(list(arguments)):
        key = override.get_key_element()
        for table in (space.distributions, space.fixed, space.choice_text):
            table.pop(key, None)
        if not override.is_sweep_override():
            space.fixed[key] = override.input_line or f"{key}={override.get_value_element_as_str()}"
            continue
        space.distributions[key], texts = _distribution(override)
        if texts is not None:
            space.choice_text[key] = texts
    return space


def _distribution(override: Override) -> tuple[Any, list[str] | None]:
    """The distribution of one sweep override, and the override text of each choice if categorical."""
    import optuna.distributions as d

    if override.is_interval_sweep():
        sweep = override.value()
        return d.FloatDistribution(float(sweep.start), float(sweep.end), log="log" in sweep.tags), None
    values = list(override.sweep_iterator(transformer=Transformer.encode))
    texts = list(override.sweep_string_iterator())
    if not values:
        raise ValueError(f"hydra.sweeper.params: {override.input_line} has no values to sample")
    if override.is_range_sweep():
        sweep = override.value()
        if not sweep.shuffle and all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            return d.IntDistribution(values[0], values[-1], step=int(sweep.step)), None
    # choices Optuna can store: None, bool, int, float, str (lists/dicts are encoded as their override text)
    return d.CategoricalDistribution(values), texts


def _number_text(value: Any) -> str:
    # repr keeps a float's full precision (1e-05, 0.0003) in a form Hydra's grammar reads back
    return repr(value) if isinstance(value, float) else str(value)

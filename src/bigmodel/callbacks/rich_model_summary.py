"""Lightning's ``RichModelSummary`` without an all-zero FLOPs column.

Lightning counts FLOPs in the summary only when the module sets ``example_input_array``; ours do not (the
input shape is known once data is loaded), so the stock table shows "FLOPs 0" for every layer and
"Total FLOPs: 0". Training FLOPs are measured on the first real batch by
:class:`bigmodel.callbacks.throughput.ThroughputMFU` and logged as ``perf/tflops_per_sec``. This class drops the
column and the total when nothing was counted, and prints Lightning's own table otherwise.
"""

from __future__ import annotations

from typing import Any

from lightning.pytorch.callbacks import RichModelSummary as _LightningRichModelSummary
from lightning.pytorch.utilities.model_summary import get_formatted_model_size, get_human_readable_count


class RichModelSummary(_LightningRichModelSummary):
    """``lightning.pytorch.callbacks.RichModelSummary`` (same arguments) that omits FLOPs nobody counted."""

    @staticmethod
    def summarize(
        summary_data: list[tuple[str, list[str]]],
        total_parameters: int,
        trainable_parameters: int,
        model_size: float,
        total_training_modes: dict[str, int],
        total_flops: int,
        **summarize_kwargs: Any,
    ) -> None:
        if total_flops:
            _LightningRichModelSummary.summarize(
                summary_data,
                total_parameters,
                trainable_parameters,
                model_size,
                total_training_modes,
                total_flops,
                **summarize_kwargs,
            )
            return
        from rich import get_console
        from rich.table import Table

        columns = [(name, values) for name, values in summary_data if name != "FLOPs"]
        table = Table(header_style=summarize_kwargs.get("header_style", "bold magenta"))
        for name, _ in columns:
            if name == " ":
                table.add_column(" ", style="dim")
            else:
                table.add_column(name, justify="left" if name in ("Name", "Type", "Mode") else "right")
        for row in zip(*(values for _, values in columns), strict=True):
            table.add_row(*row)
        console = get_console()
        console.print(table)

        grid = Table.grid(expand=True)
        grid.add_column()
        rows = {
            "Trainable params": get_human_readable_count(int(trainable_parameters)),
            "Non-trainable params": get_human_readable_count(int(total_parameters - trainable_parameters)),
            "Total params": get_human_readable_count(int(total_parameters)),
            "Total estimated model params size (MB)": get_formatted_model_size(model_size),
            "Modules in train mode": total_training_modes["train"],
            "Modules in eval mode": total_training_modes["eval"],
        }
        for label, value in rows.items():
            grid.add_row(f"[bold]{label}[/]: {value}")
        console.print(grid)

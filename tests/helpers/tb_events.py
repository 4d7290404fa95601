"""Read TensorBoard event files written by a run, for tests."""

from __future__ import annotations

from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def tb_tags(log_dir: str | Path) -> dict[str, set[str]]:
    """``{"images": {...}, "audio": {...}, "text": {...}, "scalars": {...}}``: the tags of every event
    file under ``log_dir`` (text summaries are stored as tensors ``<tag>/text_summary`` with the ``text`` plugin)."""
    out: dict[str, set[str]] = {"images": set(), "audio": set(), "text": set(), "scalars": set()}
    for events in sorted(Path(log_dir).rglob("events.out.tfevents.*")):
        acc = EventAccumulator(
            str(events), size_guidance={"images": 0, "audio": 0, "tensors": 0, "scalars": 0}
        )
        acc.Reload()
        tags = acc.Tags()
        out["images"] |= set(tags.get("images", []))
        out["audio"] |= set(tags.get("audio", []))
        out["scalars"] |= set(tags.get("scalars", []))
        out["text"] |= {
            t.removesuffix("/text_summary")
            for t in tags.get("tensors", [])
            if acc.SummaryMetadata(t).plugin_data.plugin_name == "text"
        }
    return out

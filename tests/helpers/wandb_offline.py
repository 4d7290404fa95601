"""Read what an offline W&B run recorded, for tests: config, history, media files, artifacts.

wandb ships no Python reader for ``run-<id>.wandb``. The file is a LevelDB-style log: a 7-byte file
header (``:W&B``, magic ``0xBEE1``, version byte), then 32 KiB blocks of records, each with a 7-byte
header (crc32 as 4 bytes, length as 2 bytes little-endian, type as 1 byte: FULL=1, FIRST=2,
MIDDLE=3, LAST=4). A block tail shorter than a header is zero padding. Each assembled record is a
serialized ``wandb.proto.wandb_internal_pb2.Record``.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wandb.proto import wandb_internal_pb2 as pb

BLOCK = 32 * 1024
HEADER = 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def read_records(path: str | Path) -> list[pb.Record]:
    """Every ``Record`` of a ``.wandb`` file, in order.

    Raises:
        ValueError: the file header is not W&B's, or a record chunk is out of order.
    """
    data = Path(path).read_bytes()
    ident, magic, version = struct.unpack("<4sHB", data[:HEADER])
    if ident != b":W&B" or magic != 0xBEE1 or version > 1:
        raise ValueError(f"{path}: not a W&B transaction log (header {data[:HEADER]!r})")
    records: list[pb.Record] = []
    pos, pending = HEADER, None
    while pos + HEADER <= len(data):
        left_in_block = BLOCK - pos % BLOCK
        if left_in_block < HEADER:
            pos += left_in_block
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + HEADER])
        chunk = data[pos + HEADER : pos + HEADER + length]
        pos += HEADER + length
        if kind == 0 and length == 0:
            continue
        if kind == FULL:
            pending, payload = None, chunk
        elif kind == FIRST:
            pending = chunk
            continue
        elif kind in (MIDDLE, LAST):
            if pending is None:
                raise ValueError(f"{path}: chunk type {kind} without a FIRST chunk at byte {pos}")
            pending += chunk
            if kind == MIDDLE:
                continue
            payload, pending = pending, None
        else:
            raise ValueError(f"{path}: unknown chunk type {kind} at byte {pos}")
        rec = pb.Record()
        rec.ParseFromString(payload)
        records.append(rec)
    return records


def _item_value(item: Any) -> Any:
    return json.loads(item.value_json) if item.value_json else None


def _key(item: Any) -> str:
    return item.key or "/".join(item.nested_key)


@dataclass
class OfflineRun:
    """One offline run folder ``wandb/offline-run-<time>-<id>/`` parsed."""

    dir: Path
    id: str = ""
    project: str = ""
    entity: str = ""
    group: str = ""
    job_type: str = ""
    name: str = ""
    tags: list[str] = field(default_factory=list)
    resumed: bool = False
    config: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    artifacts: list[dict[str, Any]] = field(default_factory=list)

    @property
    def metric_names(self) -> set[str]:
        return {k for row in self.history for k in row if not k.startswith("_")}

    def steps(self, key: str, step_key: str = "trainer/global_step") -> list[Any]:
        """The ``step_key`` value of every history row that holds ``key``."""
        return [row.get(step_key) for row in self.history if key in row]

    def media_files(self, kind: str = "") -> list[Path]:
        """Files under ``files/media/<kind>`` (``images``, ``audio``, ``table``...)."""
        root = self.dir / "files" / "media" / kind
        return sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else []


def _history_row(items: Any) -> dict[str, Any]:
    """One history row; media values (logged as nested keys ``[name, field]``) become ``{field: value}``."""
    row: dict[str, Any] = {}
    for item in items:
        if item.key or len(item.nested_key) == 1:
            row[item.key or item.nested_key[0]] = _item_value(item)
        elif item.nested_key:
            node = row.setdefault(item.nested_key[0], {})
            for part in item.nested_key[1:-1]:
                node = node.setdefault(part, {})
            node[item.nested_key[-1]] = _item_value(item)
    return row


def _apply_config(config: dict[str, Any], items: Any) -> None:
    for item in items:
        if _key(item).startswith("_wandb"):  # wandb's own bookkeeping (e.g. custom chart specs)
            continue
        config[_key(item)] = _item_value(item)


def read_run(run_dir: str | Path) -> OfflineRun:
    """Parse ``<run_dir>/run-<id>.wandb`` into an :class:`OfflineRun`.

    Raises:
        FileNotFoundError: no ``run-*.wandb`` in ``run_dir``.
    """
    run_dir = Path(run_dir)
    files = sorted(run_dir.glob("run-*.wandb"))
    if not files:
        raise FileNotFoundError(f"no run-*.wandb in {run_dir}")
    out = OfflineRun(dir=run_dir)
    for rec in read_records(files[0]):
        kind = rec.WhichOneof("record_type")
        if kind == "run":
            r = rec.run
            out.id, out.project, out.entity = r.run_id, r.project, r.entity
            out.group, out.job_type, out.name = r.run_group, r.job_type, r.display_name
            out.tags, out.resumed = list(r.tags), r.resumed
            _apply_config(out.config, r.config.update)
        elif kind == "config":
            _apply_config(out.config, rec.config.update)
        elif kind == "history":
            out.history.append(_history_row(rec.history.item))
        elif kind == "artifact":
            a = rec.artifact
            out.artifacts.append(
                {
                    "name": a.name,
                    "type": a.type,
                    "aliases": list(a.aliases),
                    "files": [e.path for e in a.manifest.contents],
                }
            )
    return out


def find_runs(root: str | Path) -> list[OfflineRun]:
    """Every ``offline-run-*`` folder under ``root`` (searched recursively), parsed, oldest first."""
    return [read_run(d) for d in sorted(Path(root).rglob("offline-run-*")) if d.is_dir()]

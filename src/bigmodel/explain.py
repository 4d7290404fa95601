"""Explain a classifier's predictions with Captum: ``python -m bigmodel.explain ckpt_path=FILE inputs=test:8``
(also ``bigmodel-explain``, ``make explain``).

``inputs=`` takes ``test:N``/``val:N`` (the first N samples of the run's split), a file, a folder or a glob
(images, audio, .txt); ``text='a sentence'`` (or a list) for text models. ``method=integrated_gradients |
saliency | occlusion | gradient_shap``, ``target=pred | <class name>``. Writes
``logs/explain/runs/<timestamp>_<id>/``: per input a PNG (images: heatmap over the input; audio: log-mel
attribution and a per-frame curve) and the raw attribution ``.npy``, or for text an ``.html`` of coloured
tokens and a ``token,score`` ``.csv``; and ``index.html`` showing every input, its prediction and picture.
``check=true`` also runs the deletion test and the model-randomization check on ``check_samples`` test
inputs (``checks.json``, and a section of ``index.html``).
"""

from __future__ import annotations

import html
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from bigmodel.attribution import render
from bigmodel.attribution.explainer import Explainer
from bigmodel.attribution.faithfulness import deletion_test, randomization_check
from bigmodel.attribution.inputs import Loaded, load, read_inputs, split_samples
from bigmodel.attribution.methods import check_method, resolve_target
from bigmodel.reports import html as H
from bigmodel.utils.cli import entry_point
from bigmodel.utils.io import atomic_write

log = logging.getLogger(__name__)


def stack(zs: list[torch.Tensor], pad: float | int = 0) -> torch.Tensor:
    """Concatenate batch-1 tensors, right-padding the last dimension to the longest (token ids, clips)."""
    n = max(z.shape[-1] for z in zs)
    return torch.cat([torch.nn.functional.pad(z, (0, n - z.shape[-1]), value=pad) for z in zs])


def make_explainer(loaded: Loaded, method: str, example: torch.Tensor) -> Explainer:
    """The :class:`Explainer` of a loaded model (images get the normalised black image as baseline)."""
    base = None
    if loaded.modality == "image":  # black, through the same normalisation as every input
        base = loaded.batch(torch.zeros(example.shape[1:], dtype=torch.uint8))
    return Explainer(loaded.module, loaded.modality, check_method(method), base)


def explain(cfg: DictConfig) -> dict[str, Any]:
    """Attribute every input, write the pictures and ``index.html``; returns ``{"items": [...], "checks":
    {...} or None, "output_dir": ...}``.

    Raises:
        ConfigError: no or a missing checkpoint, an unknown method, a target class that does not exist
            (the message lists the classes), or inputs of another modality than the checkpoint's.
    """
    torch.manual_seed(int(cfg.seed))
    check_method(str(cfg.method))
    loaded = load(
        str(cfg.ckpt_path),
        cfg.paths.log_dir,
        cfg.get("experiment_name"),
        cfg.paths.data_dir,
        cfg.paths.cache_dir,
    )
    text = cfg.get("text")
    text = OmegaConf.to_container(text) if OmegaConf.is_list(text) else text
    samples = read_inputs(loaded, cfg.get("inputs"), text, int(cfg.max_inputs))
    out = Path(cfg.paths.output_dir)
    ex = make_explainer(loaded, str(cfg.method), samples[0].x)
    items = [_explain_one(ex, loaded, s, i, cfg.get("target"), out) for i, s in enumerate(samples)]
    checks = (
        run_checks(
            ex,
            loaded,
            int(cfg.check_samples),
            float(cfg.deletion_fraction),
            float(cfg.randomization_threshold),
        )
        if cfg.check
        else None
    )
    if checks:
        with atomic_write(out / "checks.json", "w") as f:
            json.dump(checks, f, indent=2)
        for name, c in checks.items():
            log.info("%s: %s", name, c)
    with atomic_write(out / "index.html", "w") as f:
        f.write(_index_html(loaded, str(cfg.method), items, checks))
    log.info(
        "Explained %d inputs (%s, %s): %s", len(items), loaded.experiment, cfg.method, out / "index.html"
    )
    return {"items": items, "checks": checks, "output_dir": str(out)}


def _explain_one(ex: Explainer, loaded: Loaded, s, i: int, target: Any, out: Path) -> dict[str, Any]:
    z = ex.space(s.x)
    probs = ex.logits(z).softmax(-1)[0]
    tgt = resolve_target(target, loaded.class_names, probs.unsqueeze(0))
    attr = ex.attribute(z, tgt)
    pred = int(probs.argmax())
    stem = out / f"{i:03d}_{Path(s.name).stem}"
    title = (
        f"{s.name}: predicted {loaded.class_names[pred]} (p={probs[pred]:.2f})"
        f"{'' if s.label is None else f', true {loaded.class_names[s.label]}'}; attributed to "
        f"{loaded.class_names[int(tgt[0])]} ({ex.method})"
    )
    item = {
        "name": s.name,
        "pred": loaded.class_names[pred],
        "prob": float(probs[pred]),
        "label": None if s.label is None else loaded.class_names[s.label],
        "target": loaded.class_names[int(tgt[0])],
        "title": title,
    }
    if ex.modality == "text":
        ids = z[0]
        real = ids != int(getattr(loaded.module.net, "pad_id", 0))
        tokens = [loaded.model.pre.tokenizer.decode([int(t)]) for t in ids[real]]
        scores = [float(v) for v in attr[0][real]]
        page, table = render.write_token_files(tokens, scores, title, stem)
        item.update(html=page.name, csv=table.name, tokens=tokens, scores=scores)
        return item
    np.save(stem.with_suffix(".npy"), attr[0].numpy())
    if ex.modality == "image":
        render.image_figure(s.x[0].numpy(), attr[0].numpy(), title, stem.with_suffix(".png"))
    else:
        hop_ms = 1000 * loaded.module.frontend.hop_length / loaded.module.frontend.sample_rate_hz
        render.audio_figure(z[0].numpy(), attr[0].numpy(), hop_ms, title, stem.with_suffix(".png"))
        item["frame_importance"] = render.frame_importance(attr[0].numpy()).tolist()
    item.update(png=stem.with_suffix(".png").name, npy=stem.with_suffix(".npy").name)
    return item


def run_checks(
    ex: Explainer, loaded: Loaded, n: int, fraction: float = 0.1, threshold: float = 0.7
) -> dict[str, Any]:
    """Deletion test and model-randomization check on the first ``n`` test inputs (batched)."""
    samples = split_samples(loaded, "test", n)
    pad = int(getattr(loaded.module.net, "pad_id", 0)) if ex.modality == "text" else 0
    z = stack([ex.space(s.x) for s in samples], pad)
    target = ex.logits(z).argmax(-1)
    attr = torch.cat([ex.attribute(z[i : i + 16], target[i : i + 16]) for i in range(0, len(z), 16)])
    d = deletion_test(ex, z, attr, fraction)
    r = randomization_check(ex, z, attr, threshold)
    return {
        "deletion": {**vars(d), "passed": d.passed},
        "randomization": {**vars(r), "passed": r.passed},
    }


def _index_html(loaded: Loaded, method: str, items: list[dict[str, Any]], checks: dict | None) -> str:
    rows = []
    for it in items:
        if "png" in it:
            pic = f'<a href="{it["png"]}"><img alt="{html.escape(it["name"])}" src="{it["png"]}" style="max-width:720px"></a>'
        else:
            pic = render.token_html(it["tokens"], it["scores"]) + f' <a href="{it["csv"]}">csv</a>'
        rows.append(
            f'<tr><td class="s">{html.escape(it["name"])}</td><td class="s">{html.escape(it["pred"])} '
            f'({it["prob"]:.2f})</td><td class="s">{html.escape(str(it["label"] or "—"))}</td><td class="s">{pic}</td></tr>'
        )
    sections = [
        f'<p class="note">{html.escape(loaded.experiment)} — {html.escape(loaded.ckpt_path)} — method {method}. '
        "Red: evidence for the attributed class; blue: against.</p>",
        '<table id="inputs"><thead><tr><th>input</th><th>prediction (p)</th><th>true</th><th>attribution</th></tr>'
        f"</thead><tbody>{''.join(rows)}</tbody></table>",
    ]
    if checks:
        d, r = checks["deletion"], checks["randomization"]
        sections.append(
            f'<h2>Faithfulness checks</h2><ul id="checks"><li>Deletion test ({d["n"]} test inputs, top '
            f"{d['fraction']:.0%} removed): predicted-class probability drops {d['top_drop']:.3f} (top attributed) "
            f"vs {d['random_drop']:.3f} (random) — {'PASS' if d['passed'] else 'FAIL'}</li>"
            f"<li>Model randomization ({r['n']} inputs): Spearman rho of |attribution|, trained vs re-initialised, "
            f"mean {r['mean_rho']:.3f} (max {r['max_rho']:.3f}; pass below {r['threshold']}) — "
            f"{'PASS' if r['passed'] else 'FAIL'}</li></ul>"
        )
    return H.page(f"bigmodel explain: {loaded.experiment}", sections)


@entry_point("explain")
def main(cfg: DictConfig) -> None:
    """Hydra entry point (``bigmodel-explain``)."""
    explain(cfg)


if __name__ == "__main__":
    main()

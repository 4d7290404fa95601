"""Pictures of attributions: image heatmap overlays, log-mel attribution maps with a per-frame curve, and
coloured tokens. Files only (PNG via matplotlib's Agg backend, HTML, CSV); nothing is shown."""

from __future__ import annotations

import csv
import html
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from bigmodel.utils.io import atomic_write  # noqa: E402


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, "wb") as f:
        fig.savefig(f, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path


def _sym(a: np.ndarray) -> float:
    return float(np.abs(a).max()) or 1.0


def image_figure(image: np.ndarray, attr: np.ndarray, title: str, path: Path) -> Path:
    """Three panels: the input, the signed attribution (summed over channels, red = for the target class,
    blue = against), and the positive part as a heatmap over the input in grey.

    Args:
        image: ``(C, H, W)`` in display range (any; rescaled per image).
        attr: ``(C, H, W)`` attributions.
    """
    img = image.transpose(1, 2, 0)
    img = (img - img.min()) / (np.ptp(img) or 1.0)
    a = attr.sum(axis=0)
    fig, axes = plt.subplots(1, 3, figsize=(9, 3.3))
    axes[0].imshow(img.squeeze(-1) if img.shape[-1] == 1 else img, cmap="gray")
    axes[0].set_title("input")
    m = _sym(a)
    im = axes[1].imshow(a, cmap="bwr", vmin=-m, vmax=m)
    axes[1].set_title("attribution")
    fig.colorbar(im, ax=axes[1], fraction=0.046)
    axes[2].imshow(img.mean(axis=-1), cmap="gray")
    pos = np.clip(a, 0, None)
    axes[2].imshow(pos / (pos.max() or 1.0), cmap="inferno", alpha=0.55)
    axes[2].set_title("overlay (positive)")
    for ax in axes:
        ax.axis("off")
    fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def frame_importance(attr: np.ndarray) -> np.ndarray:
    """Per-frame importance ``(frames,)`` of a ``(n_mels, frames)`` map: the sum of |attribution| over the
    mel bands, scaled to a maximum of 1."""
    f = np.abs(attr).sum(axis=0)
    return f / (f.max() or 1.0)


def audio_figure(mel: np.ndarray, attr: np.ndarray, hop_ms: float, title: str, path: Path) -> Path:
    """The log-mel input and its attribution (time x mel, time axis in seconds), and the per-frame
    importance curve under them.

    Args:
        mel, attr: ``(n_mels, frames)``.
        hop_ms: frame hop, for the time axis.
    """
    t = mel.shape[1] * hop_ms / 1000
    ext = [0, t, 0, mel.shape[0]]
    fig, axes = plt.subplots(3, 1, figsize=(8, 7), sharex=True, gridspec_kw={"height_ratios": [2, 2, 1]})
    axes[0].imshow(mel, origin="lower", aspect="auto", extent=ext, cmap="magma")
    axes[0].set_title("log-mel input (normalised)")
    m = _sym(attr)
    im = axes[1].imshow(attr, origin="lower", aspect="auto", extent=ext, cmap="bwr", vmin=-m, vmax=m)
    axes[1].set_title("attribution (red: for the target class)")
    fig.colorbar(im, ax=axes[:2], fraction=0.03)
    for ax in axes[:2]:
        ax.set_ylabel("mel band")
    curve = frame_importance(attr)
    axes[2].plot((np.arange(len(curve)) + 0.5) * hop_ms / 1000, curve)
    axes[2].set_ylabel("frame importance")
    axes[2].set_xlabel("time (s)")
    axes[2].set_ylim(0, 1.05)
    fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def token_html(tokens: list[str], scores: list[float]) -> str:
    """Tokens as ``<span>``s coloured by score (red: for the target class, blue: against; opacity is
    |score| / max|score|), each with its score as a tooltip."""
    m = max((abs(s) for s in scores), default=0.0) or 1.0
    spans = []
    for tok, s in zip(tokens, scores, strict=True):
        rgb = "220,40,40" if s >= 0 else "40,90,220"
        spans.append(
            f'<span class="tok" title="{s:+.4f}" data-score="{s!r}" '
            f'style="background: rgba({rgb},{abs(s) / m:.3f}); padding: 1px 0">{html.escape(tok)}</span>'
        )
    return "".join(spans)


def write_token_files(tokens: list[str], scores: list[float], title: str, stem: Path) -> tuple[Path, Path]:
    """``<stem>.html`` (coloured tokens) and ``<stem>.csv`` (``token,score``)."""
    page = (
        f'<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title></head>'
        f'<body style="font-family: monospace; font-size: 18px"><p>{html.escape(title)}</p>'
        f"<p>{token_html(tokens, scores)}</p></body></html>\n"
    )
    with atomic_write(stem.with_suffix(".html"), "w") as f:
        f.write(page)
    with atomic_write(stem.with_suffix(".csv"), "w") as f:
        w = csv.writer(f)
        w.writerow(["token", "score"])
        w.writerows([t, f"{s:.6g}"] for t, s in zip(tokens, scores, strict=True))
    return stem.with_suffix(".html"), stem.with_suffix(".csv")

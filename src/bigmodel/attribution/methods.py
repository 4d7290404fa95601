"""Attributions with Captum for a loaded classification module, one function per modality.

Every function takes an already-loaded :class:`~bigmodel.models.classification.ClassificationModule` (eval
mode) and a preprocessed batch, and returns attributions in the space a person reads:

- images: w.r.t. the normalised pixels, ``(B, C, H, W)``;
- audio: w.r.t. the frontend's log-mel output, ``(B, n_mels, frames)`` (the net is attributed on features
  computed once, so the picture is a spectrogram);
- text: per token, ``(B, T)``, summed over the embedding width of the embedding layer's output
  (layer attributions: ids are not differentiable).

Methods (Captum, https://captum.ai): ``integrated_gradients`` (Sundararajan et al. 2017),
``saliency`` (|gradient|, Simonyan et al. 2014), ``occlusion`` (Zeiler & Fergus 2014) and
``gradient_shap`` (Lundberg & Lee 2017). Baselines: the black image, the mean (0) of the normalised
log-mel, and padding tokens.
"""

from __future__ import annotations

from typing import Any

import torch
from captum.attr import (
    GradientShap,
    IntegratedGradients,
    LayerFeatureAblation,
    LayerGradientXActivation,
    LayerIntegratedGradients,
    Occlusion,
    Saliency,
)
from torch import nn

from bigmodel.utils.errors import ConfigError

METHODS = ("integrated_gradients", "saliency", "occlusion", "gradient_shap")


def check_method(method: str) -> str:
    """Raises ConfigError for a method not in :data:`METHODS`."""
    if method not in METHODS:
        raise ConfigError(f"method={method!r} is not one of: {', '.join(METHODS)}.")
    return method


def resolve_target(target: Any, class_names: list[str], logits: torch.Tensor) -> torch.Tensor:
    """The class index per input ``(B,)``: the prediction for ``pred``, else a class name (or index).

    Raises:
        ConfigError: a class that does not exist; the message lists the classes.
    """
    if target in (None, "pred"):
        return logits.argmax(dim=-1)
    name = str(target)
    if name in class_names:
        idx = class_names.index(name)
    elif name.isdigit() and int(name) < len(class_names):
        idx = int(name)
    else:
        raise ConfigError(
            f"target={name!r} is not a class of this model; classes: {', '.join(class_names)} (or pred)."
        )
    return torch.full((logits.shape[0],), idx, dtype=torch.long)


def _image_like(
    forward: Any, x: torch.Tensor, target: torch.Tensor, method: str, baseline: torch.Tensor, window: tuple
) -> torch.Tensor:
    """Attributions of ``forward`` at ``x`` (any float tensor with a batch dim) for ``method``."""
    x = x.detach().clone().requires_grad_(True)
    if method == "integrated_gradients":
        return IntegratedGradients(forward).attribute(x, baselines=baseline, target=target, n_steps=32)
    if method == "saliency":
        return Saliency(forward).attribute(x, target=target, abs=True)
    if method == "occlusion":
        strides = tuple(max(1, w // 2) for w in window)
        return Occlusion(forward).attribute(
            x.detach(), sliding_window_shapes=window, strides=strides, baselines=baseline, target=target
        )
    # gradient_shap: baselines drawn around the reference (black image / mean spectrogram)
    g = torch.Generator().manual_seed(0)
    refs = torch.cat([baseline[:1], baseline[:1] + 0.5 * torch.randn(baseline[:1].shape, generator=g)])
    return GradientShap(forward).attribute(x, baselines=refs, target=target, n_samples=16, stdevs=0.1)


def image_attributions(
    module: nn.Module, x: torch.Tensor, target: torch.Tensor, method: str, baseline: torch.Tensor
) -> torch.Tensor:
    """``(B, C, H, W)`` attributions of normalised images ``x`` ``(B, C, H, W)``; ``baseline`` is the
    normalised black image ``(1, C, H, W)`` (or broadcastable)."""
    _, c, h, _ = x.shape
    window = (c, max(2, h // 7), max(2, h // 7))  # 4x4 patches on 28x28 MNIST
    return _image_like(module, x, target, method, baseline.expand_as(x).contiguous(), window)


def log_mel(module: nn.Module, waves: torch.Tensor) -> torch.Tensor:
    """The eval-mode frontend output ``(B, n_mels, frames)`` of waveforms ``(B, T)``.

    Raises:
        ConfigError: the module has no frontend (a raw-waveform net has no spectrogram to explain).
    """
    frontend = getattr(module, "frontend", None)
    if frontend is None:
        raise ConfigError(
            "This audio model has no frontend (model.frontend=null): there is no log-mel to attribute."
        )
    with torch.no_grad():
        return frontend(waves)


def audio_attributions(
    module: nn.Module, feats: torch.Tensor, target: torch.Tensor, method: str
) -> torch.Tensor:
    """``(B, n_mels, frames)`` attributions of the net (after the frontend) at log-mel ``feats``."""
    window = (4, 8)  # 4 mel bands x 8 frames (80 ms at a 10 ms hop)
    return _image_like(module.net, feats, target, method, torch.zeros_like(feats), window)


def embedding_layer(net: nn.Module) -> nn.Module:
    """The token-embedding layer of a text net: ``get_input_embeddings()`` of a Hugging Face encoder,
    ``wte`` of our from-scratch encoder, else the first ``nn.Embedding``.

    Raises:
        ConfigError: a net without an embedding layer.
    """
    enc = getattr(net, "encoder", None)
    if enc is not None and hasattr(enc, "get_input_embeddings"):
        return enc.get_input_embeddings()
    if isinstance(getattr(net, "wte", None), nn.Embedding):
        return net.wte
    for m in net.modules():
        if isinstance(m, nn.Embedding):
            return m
    raise ConfigError(f"{type(net).__name__} has no nn.Embedding layer to attribute tokens to.")


def text_baseline(net: nn.Module, ids: torch.Tensor) -> torch.Tensor:
    """Reference ids: every real token replaced by padding; a Hugging Face encoder keeps its first and last
    real tokens (``[CLS]``/``[SEP]``), as its inputs always have them."""
    pad = int(getattr(net, "pad_id", 0))
    base = torch.full_like(ids, pad)
    if hasattr(getattr(net, "encoder", None), "get_input_embeddings"):
        lengths = (ids != pad).sum(dim=1).clamp(min=1)
        rows = torch.arange(ids.shape[0])
        base[:, 0] = ids[:, 0]
        base[rows, lengths - 1] = ids[rows, lengths - 1]
    return base


def text_attributions(net: nn.Module, ids: torch.Tensor, target: torch.Tensor, method: str) -> torch.Tensor:
    """Per-token attributions ``(B, T)`` of token ids ``(B, T)`` (padding gets 0), taken on the embedding
    layer's output and summed over its width."""
    layer = embedding_layer(net)
    base = text_baseline(net, ids)
    if method == "integrated_gradients":
        attr = LayerIntegratedGradients(net, layer).attribute(ids, baselines=base, target=target, n_steps=32)
    elif method == "saliency":  # |gradient| of the embedding output, summed over the width
        attr = (
            LayerGradientXActivation(net, layer, multiply_by_inputs=False).attribute(ids, target=target).abs()
        )
    elif method == "occlusion":  # one token at a time replaced by the padding embedding
        pad_emb = layer(base[:, :1]).detach()
        mask = torch.arange(ids.shape[1]).view(1, -1, 1).expand(ids.shape[0], -1, 1)
        attr = LayerFeatureAblation(net, layer).attribute(
            ids, layer_baselines=pad_emb, target=target, layer_mask=mask
        )
    else:  # gradient SHAP in embedding space (ids cannot take Gaussian noise): the layer's output is
        # swapped for the sampled points by a forward hook
        emb, base_emb = layer(ids).detach(), layer(base).detach()

        def from_embeddings(e: torch.Tensor, ids_: torch.Tensor) -> torch.Tensor:
            hook = layer.register_forward_hook(lambda _m, _i, _o: e)
            try:
                return net(ids_)
            finally:
                hook.remove()

        attr = GradientShap(from_embeddings).attribute(
            emb, baselines=base_emb, target=target, additional_forward_args=(ids,), n_samples=16, stdevs=0.01
        )
    scores = attr.sum(dim=-1).detach()
    return scores.masked_fill(ids == int(getattr(net, "pad_id", 0)), 0.0)

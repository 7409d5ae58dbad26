"""The networks of Springenberg et al. 2014 as timm models.

Paper: "Striving for Simplicity: The All Convolutional Net", J. T. Springenberg, A. Dosovitskiy,
T. Brox, M. Riedmiller, ICLR 2015 workshop, https://arxiv.org/abs/1412.6806

All twelve networks of the paper's Table 3 are here: the base Models A, B and C and, of each, the
Strided-CNN, ConvPool-CNN and All-CNN variants. Every network is two stages at 32x32 -> 16x16 and
16x16 -> 8x8 (96 and 192 channels), then a head shared by all of them: a 3x3 convolution without
padding (8x8 -> 6x6), a 1x1 convolution, a 1x1 convolution to one map per class, and global
average pooling of the class maps.

A stage is written as data, one token per layer (see ``MODEL_SPECS``); ``AllConvNet`` builds any
of them. The paper's details kept on purpose:

* a ReLU follows every convolution, the class maps included, as the paper's tables list it;
* dropout 20% on the input and 50% after each pooling layer or the layer that replaces it;
* Xavier (Glorot) uniform initialisation of every convolution and zero biases. The paper names
  no initialisation, and the reproduction report these models follow found that they do not
  train without one.

  Known cost: Xavier's gain of 1 ignores the ReLU, so each convolution roughly halves the
  variance of what it passes on. On a batch of unit-normal images the std of the conv outputs
  of a fresh ``all_cnn_c`` falls from 0.24 to 0.016 over its nine layers, and its logits have
  std 0.007. So training starts on a plateau at loss ln 10: in the 8-epoch ``fast`` CIFAR-10 run
  the smoothed training loss stayed above 2.29 for the first hundred of its 1,560 steps (the
  one-cycle warm-up's low learning rate is part of that). He initialisation would start faster.
  It is not used here because the report used Xavier, and what Xavier costs at a fixed epoch
  budget has not been measured.
"""

from __future__ import annotations

import difflib
import os
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from timm.layers import SelectAdaptivePool2d
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model

__all__ = [
    "CIFAR10_LABELS",
    "CIFAR10_MEAN",
    "CIFAR10_STD",
    "CIFAR100_MEAN",
    "CIFAR100_STD",
    "CIFAR100_TRANSFER_LABELS",
    "HUB_NAMESPACE",
    "MODEL_NAMES",
    "MODEL_SPECS",
    "PAPER_NAMES",
    "AllConvNet",
    "InputTooSmallError",
    "PretrainedWeightsError",
    "UnknownModelError",
    "check_model_name",
    "count_macs",
    "describe_architecture",
]

# Where the published weights live on the Hugging Face Hub. A fork or a mirror points every
# pretrained config elsewhere by setting the variable before timm or this package is imported.
HUB_NAMESPACE = os.environ.get("ALLCONV_HUB_NAMESPACE", "allconv-zoo")

# Per-channel statistics of the 50,000 CIFAR-10 training images in [0, 1].
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
# Per-channel statistics of the 50,000 official CIFAR-100 training images in [0, 1].
CIFAR100_MEAN = (0.5071, 0.4865, 0.4409)
CIFAR100_STD = (0.2673, 0.2564, 0.2762)

CIFAR10_LABELS = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip

STAGE_WIDTHS = (96, 192)
HEAD_WIDTH = 192

# One stage of each network, applied twice (96 then 192 channels). Tokens:
#   "convK"    KxK convolution, stride 1, padded to keep the map size
#   "convK/2"  KxK convolution, stride 2, padded so the map halves (32 -> 16 -> 8)
#   "pool"     3x3 max-pooling, stride 2, padding 1 (32 -> 16 -> 8)
# Strided-CNN drops the pool and gives the conv before it stride 2. ConvPool-CNN puts one more
# dense conv before each pool with the pool's 3x3 kernel, which makes it the control for All-CNN
# (same parameters); All-CNN replaces each pool by a 3x3 conv with stride 2.
MODEL_SPECS: dict[str, tuple[str, ...]] = {
    "cnn_a": ("conv5", "pool"),
    "strided_cnn_a": ("conv5/2",),
    "convpool_cnn_a": ("conv5", "conv3", "pool"),
    "all_cnn_a": ("conv5", "conv3/2"),
    "cnn_b": ("conv5", "conv1", "pool"),
    "strided_cnn_b": ("conv5", "conv1/2"),
    "convpool_cnn_b": ("conv5", "conv1", "conv3", "pool"),
    "all_cnn_b": ("conv5", "conv1", "conv3/2"),
    "cnn_c": ("conv3", "conv3", "pool"),
    "strided_cnn_c": ("conv3", "conv3/2"),
    "convpool_cnn_c": ("conv3", "conv3", "conv3", "pool"),
    "all_cnn_c": ("conv3", "conv3", "conv3/2"),
}
MODEL_NAMES = tuple(MODEL_SPECS)

PAPER_NAMES = {
    "cnn_a": "Model A",
    "strided_cnn_a": "Strided-CNN-A",
    "convpool_cnn_a": "ConvPool-CNN-A",
    "all_cnn_a": "All-CNN-A",
    "cnn_b": "Model B",
    "strided_cnn_b": "Strided-CNN-B",
    "convpool_cnn_b": "ConvPool-CNN-B",
    "all_cnn_b": "All-CNN-B",
    "cnn_c": "Model C",
    "strided_cnn_c": "Strided-CNN-C",
    "convpool_cnn_c": "ConvPool-CNN-C",
    "all_cnn_c": "All-CNN-C",
}


class UnknownModelError(KeyError):
    """A model name or pretrained tag that the zoo does not have."""

    def __str__(self) -> str:  # KeyError would print the message inside quotes
        return str(self.args[0])


class InputTooSmallError(ValueError):
    """An input too small for the two stride-2 stages and the unpadded 3x3 head convolution."""


class PretrainedWeightsError(RuntimeError):
    """Pretrained weights that could not be fetched, read or fitted to the model.

    Raised by ``timm.create_model(..., pretrained=True)``; ``allconv_zoo.hub`` writes the message.

    Attributes:
        repo_id: the Hub repo the weights were asked from (None for a local file).
        file: the local weights file, when one was given.
    """

    def __init__(self, message: str, *, repo_id: str | None = None, file: str | None = None):
        super().__init__(message)
        self.repo_id = repo_id
        self.file = file


def check_model_name(name: str) -> str:
    """Return ``name`` if it is one of the zoo's architectures, else raise with the closest names.

    Accepts ``arch`` or ``arch.tag``; the tag is checked against the pretrained configs.
    """
    arch, _, tag = name.partition(".")
    if arch not in MODEL_SPECS:
        close = difflib.get_close_matches(arch, MODEL_NAMES, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise UnknownModelError(
            f"Unknown architecture {arch!r}.{hint} The zoo has: {', '.join(MODEL_NAMES)}."
        )
    if tag:
        _check_tag(arch, tag)
    return name


def _check_tag(arch: str, tag: str) -> None:
    tags = list(default_cfgs[arch].tags)
    if tag not in tags:
        have = ", ".join(t for t in tags if t) or "none (no pretrained weights yet)"
        raise UnknownModelError(
            f"{arch!r} has no pretrained tag {tag!r}. Its tags: {have}. Drop the tag to get the "
            f"default, or pass pretrained=False to build it untrained."
        )


def _parse_layer(token: str) -> tuple[str, int, int]:
    """``"conv3/2"`` -> ("conv", 3, 2); ``"pool"`` -> ("pool", 3, 2)."""
    if token == "pool":
        return "pool", 3, 2
    if not token.startswith("conv"):
        raise ValueError(f"Unknown layer token {token!r}: use 'convK', 'convK/2' or 'pool'.")
    kernel, _, stride = token[len("conv") :].partition("/")
    return "conv", int(kernel), int(stride or 1)


def describe_architecture(arch: str) -> str:
    """One sentence of the layers of ``arch``, built from its ``MODEL_SPECS`` entry.

    The model cards use it, so what a card says of a network is what ``AllConvNet`` builds.
    """
    spec = MODEL_SPECS[check_model_name(arch).partition(".")[0]]
    words = []
    for token in spec:
        kind, kernel, stride = _parse_layer(token)
        name = "max-pooling" if kind == "pool" else "convolution"
        words.append(f"{kernel}x{kernel} {name}" + (f" with stride {stride}" if stride > 1 else ""))
    pooling = (
        "Max-pooling downsamples the two stages."
        if "pool" in spec
        else "It has no pooling layer before the global average: stride-2 convolutions downsample."
    )
    return (
        f"Two stages, of {STAGE_WIDTHS[0]} then {STAGE_WIDTHS[1]} channels, each made of: "
        f"{', '.join(words)}. Then a 3x3 convolution without padding, a 1x1 convolution and a "
        f"1x1 convolution to one map per class; the class scores are the global averages of "
        f"those maps. A ReLU follows every convolution. {pooling}"
    )


def _make_stage(spec: Sequence[str], in_chs: int, out_chs: int, drop_rate: float) -> nn.Sequential:
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    conv_index = 0
    for token in spec:
        kind, kernel, stride = _parse_layer(token)
        if kind == "pool":
            layers["pool"] = nn.MaxPool2d(kernel, stride=stride, padding=kernel // 2)
            continue
        conv_index += 1
        layers[f"conv{conv_index}"] = nn.Conv2d(
            in_chs, out_chs, kernel, stride=stride, padding=kernel // 2
        )
        layers[f"act{conv_index}"] = nn.ReLU(inplace=True)
        in_chs = out_chs
    # The paper's 50% dropout follows the layer that downsamples, whichever kind it is.
    layers["drop"] = nn.Dropout(drop_rate)
    return nn.Sequential(layers)


def _min_input_size(spec: Sequence[str]) -> int:
    """Smallest square input for which the unpadded 3x3 head convolution still has a 1x1 output."""
    size = 1
    while True:
        reduced = size
        for _ in STAGE_WIDTHS:
            for token in spec:
                _, kernel, stride = _parse_layer(token)
                reduced = (reduced + 2 * (kernel // 2) - kernel) // stride + 1
        if reduced >= 3:
            return size
        size += 1


@torch.fx.wrap
def _check_input_size(x: torch.Tensor, min_size: int) -> torch.Tensor:
    # Wrapped for FX so that tracing keeps the check as one call instead of failing on it.
    height, width = x.shape[-2], x.shape[-1]
    if height < min_size or width < min_size:
        raise InputTooSmallError(
            "Input of " + str(height) + "x" + str(width) + " is too small: these networks reduce "
            "it twice by 2 and then by an unpadded 3x3 convolution, which needs at least "
            + str(min_size)
            + "x"
            + str(min_size)
            + ". Resize to 32x32, the size they were "
            "trained on (timm.data.resolve_data_config({}, model=model) gives the transform)."
        )
    return x


class AllConvNet(nn.Module):
    """Any network of the paper, built from its stage spec (see ``MODEL_SPECS``).

    Layout: ``input_drop`` -> ``stages`` (two) -> ``neck`` (3x3 valid conv, 1x1 conv, 192
    channels, the features) -> ``classifier`` (1x1 conv to the class maps) -> ReLU ->
    ``global_pool``. ``forward_features`` returns the 192-channel 6x6 map (at 32x32 input),
    ``forward_head(x, pre_logits=True)`` its average over space.
    """

    def __init__(
        self,
        spec: Sequence[str],
        num_classes: int = 10,
        in_chans: int = 3,
        drop_rate: float = 0.5,
        drop_in_rate: float = 0.2,
        global_pool: str = "avg",
        class_map_relu: bool = True,
    ) -> None:
        """
        Args:
            spec: layer tokens of one stage, e.g. ``("conv3", "conv3", "conv3/2")``.
            num_classes: number of class maps; 0 makes the model return pooled features.
            in_chans: input channels.
            drop_rate: dropout after each stage (the paper's 50%).
            drop_in_rate: dropout on the input image (the paper's 20%).
            global_pool: timm pool type for the class maps ('avg' as in the paper).
            class_map_relu: the ReLU on the class maps that the paper's tables list.
        """
        super().__init__()
        if not isinstance(in_chans, int) or in_chans < 1:
            raise ValueError(f"in_chans must be a positive integer, got {in_chans!r}.")
        if not isinstance(num_classes, int) or num_classes < 0:
            raise ValueError(
                f"num_classes must be a non-negative integer (0 for features), got {num_classes!r}."
            )
        self.spec = tuple(spec)
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.drop_rate = drop_rate
        self.class_map_relu = class_map_relu
        self.num_features = self.head_hidden_size = HEAD_WIDTH
        self.min_input_size = _min_input_size(self.spec)

        self.input_drop = nn.Dropout(drop_in_rate)
        stages = []
        self.feature_info = []
        chs = in_chans
        for index, width in enumerate(STAGE_WIDTHS):
            stages.append(_make_stage(self.spec, chs, width, drop_rate))
            chs = width
            self.feature_info.append(
                dict(num_chs=width, reduction=2 ** (index + 1), module=f"stages.{index}")
            )
        self.stages = nn.Sequential(*stages)
        self.neck = nn.Sequential(
            OrderedDict(
                conv1=nn.Conv2d(chs, HEAD_WIDTH, 3, padding=0),
                act1=nn.ReLU(inplace=True),
                conv2=nn.Conv2d(HEAD_WIDTH, HEAD_WIDTH, 1),
                act2=nn.ReLU(inplace=True),
            )
        )
        self.feature_info.append(dict(num_chs=HEAD_WIDTH, reduction=4, module="neck.act2"))
        self.global_pool = SelectAdaptivePool2d(pool_type=global_pool, flatten=bool(global_pool))
        self.classifier = self._make_classifier(num_classes)
        self.apply(_init_weights)

    def _make_classifier(self, num_classes: int) -> nn.Module:
        if num_classes == 0:
            return nn.Identity()
        classifier = nn.Conv2d(self.num_features, num_classes, 1)
        _init_weights(classifier)
        return classifier

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> dict[str, Any]:
        return dict(stem=r"^stages\.0\.conv1", blocks=r"^stages\.(\d+)|^neck")

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        if enable:
            raise NotImplementedError("Gradient checkpointing is not useful at this size.")

    @torch.jit.ignore
    def get_classifier(self) -> nn.Module:
        return self.classifier

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        """Replace the class-map convolution with a new, Xavier-initialised one."""
        self.num_classes = num_classes
        if global_pool is not None:
            self.global_pool = SelectAdaptivePool2d(
                pool_type=global_pool, flatten=bool(global_pool)
            )
        self.classifier = self._make_classifier(num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = _check_input_size(x, self.min_input_size)
        x = self.input_drop(x)
        x = self.stages(x)
        return self.neck(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        if pre_logits or self.num_classes == 0:
            return self.global_pool(x)
        x = self.classifier(x)
        if self.class_map_relu:
            x = F.relu(x)
        return self.global_pool(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def count_macs(model: nn.Module, input_size: tuple[int, int, int] = (3, 32, 32)) -> int:
    """Multiply-accumulates of one forward pass of one image, counted over the convolutions.

    Pooling, ReLU and dropout are left out: they are a fraction of a percent here and have no
    multiply-accumulate. Counted with forward hooks rather than a profiler library so that the
    number matches the definition stated here exactly.
    """
    total = 0

    def add_conv(module: nn.Conv2d, _inputs: tuple, output: torch.Tensor) -> None:
        nonlocal total
        per_output = module.in_channels // module.groups * module.kernel_size[0]
        per_output *= module.kernel_size[1]
        total += output[0].numel() * per_output

    hooks = [m.register_forward_hook(add_conv) for m in model.modules() if isinstance(m, nn.Conv2d)]
    was_training = model.training
    try:
        model.eval()
        parameter = next(model.parameters())
        with torch.no_grad():
            model(torch.zeros(1, *input_size, device=parameter.device, dtype=parameter.dtype))
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
    return total


def _init_weights(module: nn.Module) -> None:
    if isinstance(module, nn.Conv2d):
        nn.init.xavier_uniform_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


def _cfg(**kwargs: Any) -> dict[str, Any]:
    return {
        "num_classes": 10,
        "input_size": (3, 32, 32),
        "pool_size": (6, 6),
        "crop_pct": 1.0,
        "crop_mode": "center",
        "interpolation": "bilinear",
        "fixed_input_size": False,
        "mean": CIFAR10_MEAN,
        "std": CIFAR10_STD,
        "first_conv": "stages.0.conv1",
        "classifier": "classifier",
        "license": "apache-2.0",
        "paper_ids": "arXiv:1412.6806",
        "paper_name": "Striving for Simplicity: The All Convolutional Net",
        **kwargs,
    }


# The six networks that the paper and the reproduction report trained on CIFAR-10 carry weights.
PRETRAINED_ARCHS = ("cnn_a", "cnn_b", "cnn_c", "strided_cnn_c", "convpool_cnn_c", "all_cnn_c")


def _cifar10_cfg(arch: str) -> dict[str, Any]:
    return _cfg(
        hf_hub_id=f"{HUB_NAMESPACE}/{arch}.cifar10",
        label_names=CIFAR10_LABELS,
        description=f"{PAPER_NAMES[arch]} trained on CIFAR-10",
    )


# All-CNN-C fine-tuned from its CIFAR-10 weights on the two ten-class CIFAR-100 subsets of the
# reproduction report (recipes/transfer.py), each two coarse classes of five fine classes, in
# label order; allconv_zoo.data.CIFAR100_SUBSETS is derived from this.
CIFAR100_TRANSFER_LABELS: dict[str, tuple[str, ...]] = {
    # large carnivores + vehicles 1
    "cifar100_class1": (
        "bear", "leopard", "lion", "tiger", "wolf",
        "bicycle", "bus", "motorcycle", "pickup_truck", "train",
    ),
    # flowers + household electrical devices
    "cifar100_class2": (
        "orchid", "poppy", "rose", "sunflower", "tulip",
        "clock", "keyboard", "lamp", "telephone", "television",
    ),
}  # fmt: skip
TRANSFER_ARCHS = ("all_cnn_c",)


def _cifar100_transfer_cfg(arch: str, tag: str) -> dict[str, Any]:
    subset = tag.removeprefix("cifar100_")
    return _cfg(
        hf_hub_id=f"{HUB_NAMESPACE}/{arch}.{tag}",
        label_names=CIFAR100_TRANSFER_LABELS[tag],
        mean=CIFAR100_MEAN,
        std=CIFAR100_STD,
        description=f"{PAPER_NAMES[arch]} fine-tuned from CIFAR-10 on CIFAR-100 {subset}",
    )


# The first tag of an architecture is its default: cifar10 stays first.
default_cfgs = generate_default_cfgs(
    {
        **{f"{arch}.cifar10": _cifar10_cfg(arch) for arch in PRETRAINED_ARCHS},
        **{
            f"{arch}.{tag}": _cifar100_transfer_cfg(arch, tag)
            for arch in TRANSFER_ARCHS
            for tag in CIFAR100_TRANSFER_LABELS
        },
        **{arch: _cfg() for arch in MODEL_NAMES if arch not in PRETRAINED_ARCHS},
    }
)


def _create_allconv(variant: str, pretrained: bool = False, **kwargs: Any) -> AllConvNet:
    tag = kwargs.get("pretrained_cfg")
    if isinstance(tag, str) and tag:
        _check_tag(variant, tag)
    in_chans = kwargs.get("in_chans", 3)
    if not isinstance(in_chans, int) or in_chans < 1:
        raise ValueError(
            f"in_chans must be a positive integer, got {in_chans!r}. Pretrained weights take 3; "
            "timm adapts the first convolution for other counts (1 sums the RGB filters)."
        )
    build_kwargs = dict(
        spec=MODEL_SPECS[variant],
        feature_cfg=dict(flatten_sequential=True, out_indices=(0, 1, 2)),
        **kwargs,
    )
    if not pretrained:
        return build_model_with_cfg(AllConvNet, variant, pretrained, **build_kwargs)
    try:
        return build_model_with_cfg(AllConvNet, variant, pretrained, **build_kwargs)
    except Exception as err:
        # Imported here because allconv_zoo.hub imports this module.
        from allconv_zoo.hub import pretrained_weights_error

        wrapped = pretrained_weights_error(variant, kwargs, err)
        if wrapped is None:  # not a failure to fetch, read or fit the weights
            raise
        raise wrapped from err


@register_model
def cnn_a(pretrained: bool = False, **kwargs: Any) -> AllConvNet:
    """Model A: 5x5 conv 96, pool, 5x5 conv 192, pool (arXiv:1412.6806, Table 1)."""
    return _create_allconv("cnn_a", pretrained, **kwargs)


@register_model
def strided_cnn_a(pretrained: bool = False, **kwargs: Any) -> AllConvNet:
    """Strided-CNN-A: Model A without pools, its 5x5 convs at stride 2 (arXiv:1412.6806)."""
    return _create_allconv("strided_cnn_a", pretrained, **kwargs)


@register_model
def convpool_cnn_a(pretrained: bool = False, **kwargs: Any) -> AllConvNet:
    """ConvPool-CNN-A: Model A with a dense 3x3 conv before each pool (arXiv:1412.6806)."""
    return _create_allconv("convpool_cnn_a", pretrained, **kwargs)


@register_model
def all_cnn_a(pretrained: bool = False, **kwargs: Any) -> AllConvNet:
    """All-CNN-A: Model A with each pool replaced by a 3x3 conv of stride 2 (arXiv:1412.6806)."""
    return _create_allconv("all_cnn_a", pretrained, **kwargs)


@register_model
def cnn_b(pretrained: bool = False, **kwargs: Any) -> AllConvNet:
    """Model B: 5x5 conv, 1x1 conv, pool, at 96 then 192 channels (arXiv:1412.6806, Table 1)."""
    return _create_allconv("cnn_b", pretrained, **kwargs)


@register_model
def strided_cnn_b(pretrained: bool = False, **kwargs: Any) -> AllConvNet:
    """Strided-CNN-B: Model B without pools, its 1x1 convs at stride 2 (arXiv:1412.6806)."""
    return _create_allconv("strided_cnn_b", pretrained, **kwargs)


@register_model
def convpool_cnn_b(pretrained: bool = False, **kwargs: Any) -> AllConvNet:
    """ConvPool-CNN-B: Model B with a dense 3x3 conv before each pool (arXiv:1412.6806)."""
    return _create_allconv("convpool_cnn_b", pretrained, **kwargs)


@register_model
def all_cnn_b(pretrained: bool = False, **kwargs: Any) -> AllConvNet:
    """All-CNN-B: Model B with each pool replaced by a 3x3 conv of stride 2 (arXiv:1412.6806)."""
    return _create_allconv("all_cnn_b", pretrained, **kwargs)


@register_model
def cnn_c(pretrained: bool = False, **kwargs: Any) -> AllConvNet:
    """Model C: two 3x3 convs and a pool, at 96 then 192 channels (arXiv:1412.6806, Table 1)."""
    return _create_allconv("cnn_c", pretrained, **kwargs)


@register_model
def strided_cnn_c(pretrained: bool = False, **kwargs: Any) -> AllConvNet:
    """Strided-CNN-C: Model C without pools, its second 3x3 convs at stride 2 (arXiv:1412.6806)."""
    return _create_allconv("strided_cnn_c", pretrained, **kwargs)


@register_model
def convpool_cnn_c(pretrained: bool = False, **kwargs: Any) -> AllConvNet:
    """ConvPool-CNN-C: Model C with a third 3x3 conv before each pool (arXiv:1412.6806, Table 2)."""
    return _create_allconv("convpool_cnn_c", pretrained, **kwargs)


@register_model
def all_cnn_c(pretrained: bool = False, **kwargs: Any) -> AllConvNet:
    """All-CNN-C: Model C, each pool replaced by a 3x3 stride-2 conv (arXiv:1412.6806, Table 2)."""
    return _create_allconv("all_cnn_c", pretrained, **kwargs)

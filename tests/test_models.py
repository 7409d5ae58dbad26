"""The zoo's networks: the paper's architectures, timm's conventions and generic model checks."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import warnings

import pytest
import timm
import torch
import torch.nn as nn
from timm.data import resolve_data_config

import allconv_zoo
from allconv_zoo.models import (
    CIFAR10_LABELS,
    CIFAR10_MEAN,
    CIFAR10_STD,
    MODEL_NAMES,
    PRETRAINED_ARCHS,
    InputTooSmallError,
    UnknownModelError,
    check_model_name,
    describe_architecture,
)

# The parameter counts of the paper's networks with 10 classes.
EXPECTED_PARAMETERS = {
    "cnn_a": 839_242,
    "cnn_b": 885_610,
    "cnn_c": 954_730,
    "strided_cnn_c": 954_730,
    "convpool_cnn_c": 1_369_738,
    "all_cnn_c": 1_369_738,
}


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def conv_layers(module: nn.Module) -> list[nn.Conv2d]:
    return [m for m in module.modules() if isinstance(m, nn.Conv2d)]


@pytest.mark.parametrize("arch", sorted(EXPECTED_PARAMETERS))
def test_parameter_count_matches_the_paper(arch):
    assert count_parameters(timm.create_model(arch)) == EXPECTED_PARAMETERS[arch]


def test_all_twelve_networks_are_registered():
    assert set(timm.list_models("*cnn*")) >= set(MODEL_NAMES)
    assert len(MODEL_NAMES) == 12


def test_pretrained_listing_has_the_six_cifar10_networks_and_the_transfer_models():
    listed = set(timm.list_models(pretrained=True))
    ours = {name for name in listed if name.split(".")[0] in MODEL_NAMES}
    assert {name for name in ours if name.endswith(".cifar10")} == {
        f"{arch}.cifar10" for arch in PRETRAINED_ARCHS
    }
    assert ours - {f"{arch}.cifar10" for arch in PRETRAINED_ARCHS} == {
        "all_cnn_c.cifar100_class1",
        "all_cnn_c.cifar100_class2",
    }
    # the CIFAR-10 weights stay each architecture's default
    assert timm.create_model("all_cnn_c").pretrained_cfg["tag"] == "cifar10"


@pytest.mark.parametrize("arch", MODEL_NAMES)
def test_map_sizes_after_each_stage(arch):
    model = timm.create_model(arch).eval()
    x = torch.randn(2, 3, 32, 32)
    sizes = []
    h = model.input_drop(x)
    for stage in model.stages:
        h = stage(h)
        sizes.append(tuple(h.shape[1:]))
    assert sizes == [(96, 16, 16), (192, 8, 8)]
    assert model.forward_features(x).shape == (2, 192, 6, 6)
    assert model(x).shape == (2, 10)


@pytest.mark.parametrize(
    ("arch", "kernels"),
    [
        ("cnn_a", [5, 5]),
        ("cnn_b", [5, 1, 5, 1]),
        ("cnn_c", [3, 3, 3, 3]),
        ("strided_cnn_c", [3, 3, 3, 3]),
        ("convpool_cnn_c", [3, 3, 3, 3, 3, 3]),
        ("all_cnn_c", [3, 3, 3, 3, 3, 3]),
    ],
)
def test_stage_convolutions_follow_the_paper(arch, kernels):
    model = timm.create_model(arch)
    stage_convs = conv_layers(model.stages)
    assert [c.kernel_size[0] for c in stage_convs] == kernels
    has_pool = any(isinstance(m, nn.MaxPool2d) for m in model.modules())
    assert has_pool == (arch.split("_")[0] in ("cnn", "convpool"))
    strides = [c.stride[0] for c in stage_convs]
    if arch.startswith(("strided", "all")):
        # the last conv of each stage downsamples
        per_stage = len(kernels) // 2
        assert strides == ([1] * (per_stage - 1) + [2]) * 2
    else:
        assert set(strides) == {1}


@pytest.mark.parametrize("arch", MODEL_NAMES)
def test_description_names_the_layers_the_model_has(arch):
    # The model cards print this sentence; it must not call a pooled network pool-free.
    model = timm.create_model(arch)
    text = describe_architecture(arch)
    has_pool = any(isinstance(m, nn.MaxPool2d) for m in model.modules())
    assert ("max-pooling" in text) == has_pool
    strided = any(c.stride == (2, 2) for c in conv_layers(model))
    assert ("convolution with stride 2" in text) == strided
    first_stage = [
        f"{m.kernel_size[0]}x{m.kernel_size[0]} convolution" + " with stride 2" * (m.stride[0] == 2)
        for m in model.stages[0]
        if isinstance(m, nn.Conv2d)
    ]
    assert f"made of: {', '.join(first_stage)}" in text


def test_all_cnn_c_replaces_each_pool_by_a_strided_conv():
    model = timm.create_model("all_cnn_c")
    downsamplers = [c for c in conv_layers(model.stages) if c.stride == (2, 2)]
    assert [(c.in_channels, c.out_channels, c.kernel_size) for c in downsamplers] == [
        (96, 96, (3, 3)),
        (192, 192, (3, 3)),
    ]


def test_head_is_shared_and_relu_follows_every_conv_including_the_class_maps():
    model = timm.create_model("cnn_a").eval()
    neck_convs = conv_layers(model.neck)
    assert [(c.kernel_size, c.padding) for c in neck_convs] == [((3, 3), (0, 0)), ((1, 1), (0, 0))]
    relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
    # every conv but the class-map one is followed by an nn.ReLU; the class maps get F.relu
    assert len(relus) == len(conv_layers(model)) - 1
    assert (model(torch.randn(4, 3, 32, 32)) >= 0).all()


def test_class_map_relu_can_be_turned_off():
    model = timm.create_model("all_cnn_c", class_map_relu=False).eval()
    with torch.no_grad():
        model.classifier.bias.fill_(-100.0)
    assert (model(torch.randn(2, 3, 32, 32)) < 0).all()


def test_dropout_defaults_are_the_papers_and_can_be_overridden():
    model = timm.create_model("all_cnn_c")
    assert model.input_drop.p == 0.2
    assert [stage.drop.p for stage in model.stages] == [0.5, 0.5]
    model = timm.create_model("all_cnn_c", drop_rate=0.1, drop_in_rate=0.0)
    assert model.input_drop.p == 0.0
    assert [stage.drop.p for stage in model.stages] == [0.1, 0.1]


def test_weights_are_xavier_uniform_and_biases_zero():
    torch.manual_seed(0)
    model = timm.create_model("all_cnn_c")
    for conv in conv_layers(model):
        fan_in = conv.in_channels * conv.kernel_size[0] * conv.kernel_size[1]
        fan_out = conv.out_channels * conv.kernel_size[0] * conv.kernel_size[1]
        bound = (6.0 / (fan_in + fan_out)) ** 0.5
        assert conv.weight.abs().max() <= bound
        # a uniform draw fills most of its range (PyTorch's default init would not reach it)
        assert conv.weight.abs().max() > 0.95 * bound
        assert torch.count_nonzero(conv.bias) == 0


@pytest.mark.parametrize("arch", PRETRAINED_ARCHS)
def test_pretrained_config(arch, monkeypatch):
    cfg = timm.create_model(f"{arch}.cifar10").pretrained_cfg
    assert cfg["hf_hub_id"] == f"{allconv_zoo.HUB_NAMESPACE}/{arch}.cifar10"
    assert cfg["input_size"] == (3, 32, 32)
    assert cfg["crop_pct"] == 1.0
    assert tuple(cfg["mean"]) == CIFAR10_MEAN and tuple(cfg["std"]) == CIFAR10_STD
    assert cfg["num_classes"] == 10
    assert tuple(cfg["label_names"]) == CIFAR10_LABELS
    assert cfg["first_conv"] == "stages.0.conv1"
    assert cfg["classifier"] == "classifier"
    assert cfg["license"]
    assert "1412.6806" in cfg["paper_ids"]


def test_hub_namespace_comes_from_the_environment():
    code = textwrap.dedent(
        """
        import timm
        print(timm.create_model("all_cnn_c.cifar10").pretrained_cfg["hf_hub_id"])
        """
    )
    env = {**os.environ, "ALLCONV_HUB_NAMESPACE": "my-mirror"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "my-mirror/all_cnn_c.cifar10"


def test_register_functions_have_docstrings_naming_the_paper():
    for arch in MODEL_NAMES:
        doc = getattr(allconv_zoo.models, arch).__doc__
        assert "1412.6806" in doc, arch


def test_resolve_data_config_gives_32x32_without_resize_and_cifar_stats():
    config = resolve_data_config({}, model=timm.create_model("all_cnn_c"))
    assert config["input_size"] == (3, 32, 32)
    assert config["crop_pct"] == 1.0
    assert config["mean"] == CIFAR10_MEAN and config["std"] == CIFAR10_STD
    transform = timm.data.create_transform(**config)
    from PIL import Image

    image = Image.new("RGB", (32, 32), (128, 64, 32))
    assert transform(image).shape == (3, 32, 32)


def test_classifier_and_features_surface():
    model = timm.create_model("all_cnn_c").eval()
    x = torch.randn(3, 3, 32, 32)
    assert model.get_classifier() is model.classifier
    features = model.forward_features(x)
    assert features.shape == (3, 192, 6, 6)
    pooled = model.forward_head(features, pre_logits=True)
    assert pooled.shape == (3, model.num_features) == (3, 192)
    assert torch.allclose(pooled, features.mean((2, 3)), atol=1e-6)
    model.reset_classifier(7)
    assert model(x).shape == (3, 7)
    assert model.get_classifier().out_channels == 7
    model.reset_classifier(0)
    assert model(x).shape == (3, 192)
    model.reset_classifier(0, "")
    assert model(x).shape == (3, 192, 6, 6)


def test_num_classes_zero_gives_pooled_features():
    model = timm.create_model("cnn_b", num_classes=0).eval()
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 192)


def test_in_chans_and_num_classes_overrides():
    model = timm.create_model("all_cnn_c", in_chans=1, num_classes=100).eval()
    assert model.stages[0].conv1.in_channels == 1
    assert model(torch.randn(2, 1, 32, 32)).shape == (2, 100)


def test_features_only():
    model = timm.create_model("all_cnn_c", features_only=True).eval()
    outputs = model(torch.randn(2, 3, 32, 32))
    assert model.feature_info.channels() == [96, 192, 192]
    assert model.feature_info.reduction() == [2, 4, 4]
    assert [tuple(o.shape) for o in outputs] == [(2, 96, 16, 16), (2, 192, 8, 8), (2, 192, 6, 6)]
    model = timm.create_model("cnn_a", features_only=True, out_indices=(1,)).eval()
    assert [tuple(o.shape) for o in model(torch.randn(1, 3, 32, 32))] == [(1, 192, 8, 8)]


# timm's own generic checks (tests/test_models.py of pytorch-image-models), rewritten for ours.


@pytest.mark.parametrize("arch", MODEL_NAMES)
def test_timm_generic_forward_and_backward(arch):
    model = timm.create_model(arch, num_classes=42)
    model.train()
    outputs = model(torch.randn(2, 3, 32, 32))
    outputs.mean().backward()
    assert outputs.shape == (2, 42)
    assert not torch.isnan(outputs).any()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None, f"no gradient for {name}"


@pytest.mark.parametrize("arch", MODEL_NAMES)
def test_timm_generic_default_cfg_and_pooling(arch):
    model = timm.create_model(arch).eval()
    cfg = model.pretrained_cfg
    x = torch.randn(1, *cfg["input_size"])
    assert model.forward_features(x).shape[-2:] == cfg["pool_size"]
    state = model.state_dict()
    assert cfg["classifier"] + ".weight" in state
    assert cfg["first_conv"] + ".weight" in state
    model.reset_classifier(0)
    assert model(x).shape == (1, model.num_features)
    model.reset_classifier(0, "")
    assert model(x).shape[-2:] == cfg["pool_size"]


@pytest.mark.parametrize("arch", ["cnn_a", "strided_cnn_b", "all_cnn_c"])
def test_timm_generic_torchscript(arch):
    with timm.set_scriptable(True):
        model = timm.create_model(arch).eval()
    x = torch.randn(1, 3, 32, 32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch 2.14 deprecates TorchScript
        scripted = torch.jit.script(model)
    assert torch.allclose(scripted(x), model(x), atol=1e-5)


@pytest.mark.parametrize("arch", ["cnn_b", "convpool_cnn_c", "all_cnn_c"])
def test_timm_generic_fx_trace(arch):
    from timm.models import create_feature_extractor, get_graph_node_names

    model = timm.create_model(arch).eval()
    _, eval_nodes = get_graph_node_names(model)
    assert "neck.act2" in eval_nodes
    extractor = create_feature_extractor(model, return_nodes={"neck.act2": "features"})
    x = torch.randn(1, 3, 32, 32)
    assert torch.allclose(extractor(x)["features"], model.forward_features(x), atol=1e-6)
    traced = torch.fx.symbolic_trace(model)
    assert torch.allclose(traced(x), model(x), atol=1e-6)


# Bad input: one clear error each.


def test_unknown_name_suggests_the_closest():
    with pytest.raises(UnknownModelError, match="all_cnn_c"):
        check_model_name("all_cnn_d")


def test_unknown_tag_lists_the_tags():
    with pytest.raises(UnknownModelError, match="cifar10"):
        timm.create_model("all_cnn_c.imagenet")
    with pytest.raises(UnknownModelError, match="no pretrained weights"):
        check_model_name("all_cnn_a.cifar10")


def test_bad_in_chans_is_refused_with_a_reason():
    with pytest.raises(ValueError, match="in_chans must be a positive integer"):
        timm.create_model("all_cnn_c", in_chans=0)


@pytest.mark.parametrize("size", [8, 4])
def test_too_small_input_says_what_to_do(size):
    model = timm.create_model("all_cnn_c").eval()
    with pytest.raises(InputTooSmallError, match="at least 9x9"):
        model(torch.randn(1, 3, size, size))


def test_smallest_accepted_input_runs():
    model = timm.create_model("all_cnn_c").eval()
    assert model(torch.randn(1, 3, 9, 9)).shape == (1, 10)


# No import needed: the .pth hook registers the models when timm is imported.


def _run_python(code: str, **env: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, **env}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_timm_finds_the_models_without_importing_allconv_zoo():
    out = _run_python(
        """
        import sys
        assert "allconv_zoo" not in sys.modules
        import timm
        model = timm.create_model("all_cnn_c")
        print(type(model).__module__, "all_cnn_c" in timm.list_models("*cnn*"))
        """
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["allconv_zoo.models", "True"]


def test_hook_costs_nothing_before_timm_is_imported():
    out = _run_python(
        """
        import sys
        print(sorted(m for m in ("torch", "timm", "allconv_zoo") if m in sys.modules))
        print(any(type(f).__name__ == "_TimmImportWatcher" for f in sys.meta_path))
        """
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:2] == ["[]", "True"]


def test_hook_can_be_turned_off():
    out = _run_python(
        """
        import timm
        print(timm.list_models("all_cnn_*"))
        """,
        ALLCONV_ZOO_AUTOREGISTER="0",
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"

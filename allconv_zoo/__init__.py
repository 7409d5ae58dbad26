"""allconv_zoo: the networks of "Striving for Simplicity: The All Convolutional Net" for timm.

Importing the package registers the twelve models with timm (``timm.list_models("*cnn*")``);
once the package is installed, timm finds them even in programs that never import it (see
``allconv_zoo_autoregister``).
"""

from allconv_zoo.models import (
    HUB_NAMESPACE,
    MODEL_NAMES,
    MODEL_SPECS,
    PAPER_NAMES,
    PRETRAINED_ARCHS,
    AllConvNet,
    InputTooSmallError,
    PretrainedWeightsError,
    UnknownModelError,
    check_model_name,
    count_macs,
)

__version__ = "0.1.0"

__all__ = [
    "HUB_NAMESPACE",
    "MODEL_NAMES",
    "MODEL_SPECS",
    "PAPER_NAMES",
    "PRETRAINED_ARCHS",
    "AllConvNet",
    "InputTooSmallError",
    "PretrainedWeightsError",
    "UnknownModelError",
    "check_model_name",
    "count_macs",
]

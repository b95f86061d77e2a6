from .components import Components
from .registry import MODEL_REGISTRY, build_model, build_model_from_config, model_settings, register

__all__ = [
    "Components",
    "MODEL_REGISTRY",
    "build_model",
    "build_model_from_config",
    "model_settings",
    "register",
]

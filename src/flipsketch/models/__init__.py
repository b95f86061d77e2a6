from .components import Components
from .registry import MODEL_REGISTRY, build_model, register

__all__ = ["Components", "MODEL_REGISTRY", "build_model", "register"]

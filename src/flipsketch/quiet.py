"""Silence third-party messages that tell a flipsketch user nothing, each matched by its text.

Only these exact messages are dropped; every other warning and log record still shows:
  * diffusers: "There are modules in X that should be kept in float32: []" (empty list: nothing to keep)
  * open_clip: its INFO chatter about parsing a tokenizer identifier and loading built-in configs
  * Lightning: the "Tip: ... litlogger" advertisement
  * PyTorch/Lightning: the `isinstance(treespec, LeafSpec)` deprecation raised inside Lightning
"""

from __future__ import annotations

import logging
import re
import warnings

_LOG_PATTERNS = {
    "diffusers.models.modeling_utils": re.compile(r"should be kept in float32: \[\]"),
    "root": re.compile(
        r"^(Parsing (tokenizer|model) identifier\.|Attempting to load config from built-in:|"
        r"Using default SimpleTokenizer\.|Loaded built-in \S+ model config\.|"
        r"Instantiating model architecture:)"
    ),
    "pytorch_lightning.utilities.rank_zero": re.compile(r"Tip: .*litlogger"),
    "lightning.pytorch.utilities.rank_zero": re.compile(r"Tip: .*litlogger"),
}


class _DropMessages(logging.Filter):
    def __init__(self, pattern: re.Pattern) -> None:
        super().__init__()
        self.pattern = pattern

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            return not self.pattern.search(record.getMessage())
        except Exception:  # noqa: BLE001 - a record that cannot format itself is not ours to judge
            return True


_installed = False


def quiet_third_party() -> None:
    """Install the filters (idempotent). Call at the start of every CLI."""
    global _installed
    if _installed:
        return
    _installed = True
    for name, pattern in _LOG_PATTERNS.items():
        logger = logging.getLogger() if name == "root" else logging.getLogger(name)
        logger.addFilter(_DropMessages(pattern))
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)` is deprecated")

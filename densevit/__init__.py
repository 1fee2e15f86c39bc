"""densevit: dense prediction with plain Vision Transformers."""

__version__ = "0.1.0"

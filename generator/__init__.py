"""cortex-build: Cortex projects of every generation -> standalone images, compose, manifests."""

__version__ = "0.1.0"

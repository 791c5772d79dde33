"""Synthetic data, outside the runtime path: the embedded sample edition and the world-scale generator."""

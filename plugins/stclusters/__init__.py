"""stclusters: find and rank science and technology clusters the way WIPO's GII does."""

__version__ = "0.1.0"

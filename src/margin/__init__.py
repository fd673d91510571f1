"""margin: agentic AI systems as marginal token allocation economies."""

__version__ = "0.1.0"
__all__ = ["__version__"]

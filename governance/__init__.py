"""stylevault's catalogue core: images, sources, licences, review, audit, and the CLI."""

__version__ = "0.1.0"

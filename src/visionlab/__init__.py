"""visionlab: run, track and report computer-vision experiments."""

__version__ = "0.1.0"

"""The tasks a run can solve. Importing the package registers the built-in ones (``builtin.py``) in the
registry (``registry.py``) before any stage asks it; a plug-in task registers itself the same way."""

from visionlab.tasks import builtin  # noqa: F401  (registers classification and segmentation)

"""Using a trained model: a run folder (or a checkpoint) is the model.

``loading``: which checkpoint, the run's config read as data (allow-listed), the model rebuilt from the
registry, and the facts of its inputs. ``run_config``: evaluation, resume and ``init_from`` take the model and
its inputs from the run. ``preprocess``: image files turned into the model's inputs the way training turned
its data. ``predict`` / ``export``: the ``visionlab-predict`` and ``visionlab-export`` commands."""

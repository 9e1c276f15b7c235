"""The run record's contract: every file name, the folder layout, the readers and writers, and the metric
keys.

The trainer writes a run folder, the sweep bookkeeping indexes run folders and the report reads them, all
through this package, so none of them spells a file name or a metric key of its own:

- ``layout``: names of the files in a run folder and a sweep folder, and a run's status values;
- ``metric_keys``: the metric keys per task (one name per quantity, the same in the logger, ``metrics.csv``,
  ``summary.json``, W&B and the report);
- ``folder``: ``RunFolder``, the readers and writers of one run folder;
- ``sweep_index``: the index of a multirun's jobs;
- ``summary``: the sections of ``summary.json`` computed from the per-epoch rows;
- ``resume``: when a run continues an earlier one (folder, W&B id, epochs kept) or is skipped as complete.
"""

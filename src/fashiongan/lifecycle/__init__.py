"""A run's lifecycle, start to exit, in one place.

- :mod:`.signals`: SIGTERM stops a run as Ctrl-C does; training holds both until a step ends.
- :mod:`.variant_lock`: one training of a variant at a time; a checkpoint folder that cannot be
  used is refused before any work.
- :mod:`.records`: the MLflow run says how it ended (KILLED on a signal), and a run a SIGKILL
  left RUNNING is closed by the next start of the same variant.
- :mod:`.exits`: the exit code and the one line for every way a run can fail.

The Kedro hooks that call these live in :mod:`fashiongan.hooks`; ``kedro run``'s wrapper in
:mod:`fashiongan.cli`. Nothing is imported here: the training loop imports :mod:`.signals`
without MLflow.
"""

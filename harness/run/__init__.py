"""Running suites without pytest: :mod:`harness.run.session` owns a run, from binding targets
to writing the record; the pytest plugin collects, asks it for each case's result and
reports."""

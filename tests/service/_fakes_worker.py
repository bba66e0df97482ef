"""Imported by job and worker *subprocesses* (``--import tests.service._fakes_worker``): registers the ``test.*``
analyzers in that process only; the test process itself uses the ``fake_analyzers`` fixture."""

from tests.service._analysis_fakes import register_in_this_process

register_in_this_process()

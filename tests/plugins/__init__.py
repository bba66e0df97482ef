"""Plug-in packages used by the tests: installed by putting their folder on ``sys.path`` (they carry their own
``.dist-info``, so ``importlib.metadata`` finds their entry points exactly as for a pip-installed package)."""

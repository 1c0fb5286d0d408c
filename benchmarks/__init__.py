"""losscheck's benchmark suite (issue 8): ``python benchmarks/run.py [--quick] [--output PATH]``.

Modules: :mod:`run` (the command), :mod:`gradient_bench` with :mod:`gradient_cases` and
:mod:`planted` (one example's gradient check vs gradcheck, check_grads, compute_gradient),
:mod:`overhead` (harness vs bare framework calls), :mod:`import_time`, and the helpers
:mod:`timing`, :mod:`threads`, :mod:`machine`, :mod:`tables`. ``plugin_startup.py`` is a separate
script (pytest start-up with and without the plugin).
"""

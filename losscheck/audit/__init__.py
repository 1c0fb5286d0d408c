"""`losscheck audit FILE`: find the losses in a user's file and check each one in a sandbox.

* :mod:`.discover` reads the file's syntax tree (losses, models, call sites);
* :mod:`.sandbox` runs :mod:`.worker` in a subprocess with time, memory and output limits; the
  worker imports the file, turns each candidate into a callable and audits it;
* :mod:`.infer` decides what each loss takes (roles, domains, shapes; ``--inputs`` and
  :func:`losscheck.declare` override) and builds plausible inputs and context tensors;
* :mod:`.evaluate` calls and differentiates a loss in its framework;
* :mod:`.checks` runs, per loss: :mod:`.identify` (which catalog loss it equals) or the given
  reference with the oracle properties, the reference-free :mod:`.probes`, and the :mod:`.static`
  checks read off the source; :mod:`.repro` writes standalone reproducers;
* :mod:`.report` writes the JSON document, the text and the HTML; :mod:`.cli` is the command.

Importing this package imports no framework (``losscheck.declare`` lives here).
"""

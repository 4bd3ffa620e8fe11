"""The subcommands of ``chaoyang-desktop``, one module each (``add_parser`` + a ``run``-like handler).

Each handler calls the same core functions as the GUI and returns an exit status; errors a person
can fix are raised as :class:`~chaoyang_desktop.core.errors.ChaoyangError` and printed by ``cli``.
"""

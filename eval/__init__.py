"""Evaluation: retrieval metrics and runs (``metrics``, ``runs``, ``datasets``, ``significance``,
``retrieval``, ``report``) and answer/judge evaluation (``judges``, ``answers``)."""

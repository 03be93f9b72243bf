"""Staged rollouts guarded by the platform's own error data: a gray release grown step by
step (``plan.py``), each step after a health gate (``gate.py``), run by the scheduler as
timed actions (``engine.py``), shown in words (``words.py``)."""

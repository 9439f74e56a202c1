"""Kept so that existing imports work: the helpers live in :mod:`shared.core.text`, which the
wheel and sdist checks share."""

from shared.core.text import is_control, one_line, problem_list, show, show_list

__all__ = ["is_control", "one_line", "problem_list", "show", "show_list"]

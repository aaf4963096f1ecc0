"""One exception family. A user mistake raises a subclass of LongtailError; the CLI
prints its message as one red line and exits with code 2. Anything else is a bug."""

from __future__ import annotations


class LongtailError(Exception):
    """Base of every error a user can act on."""


class InputError(LongtailError):
    """Bad input: a malformed file, a missing column, a wrong vector, an unknown id.

    The message names the file, row, column and value where they are known.
    """


class NotFoundError(InputError):
    """Bad input naming something that does not exist: a round, a dataset version, a
    task (the service answers 404; the CLI, as for any InputError, exit code 2)."""


class ProjectError(LongtailError):
    """The project is missing, of another schema version, or in a state that forbids the call."""


class EmptyPoolError(LongtailError):
    """There is nothing to select from."""


class RoundConflictError(ProjectError):
    """Another round, planned at the same time, took the samples this one chose."""

"""Errors a user can act on.

Every message names the input at fault (a file, a field, an option) and the fix.
The runner prints them as one paragraph without a traceback unless ``--debug``.
"""


class UserInputError(ValueError):
    """Bad input from the user: a file, a config option, a command-line argument."""


class DataError(UserInputError):
    """A dataset or feature file that cannot be used as it is."""


class ConfigError(UserInputError):
    """An option that is unknown, malformed or incompatible with another."""

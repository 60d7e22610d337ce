"""The one exception type for mistakes a user can fix."""


class CrackalError(Exception):
    """A problem with the user's input (path, file, option).

    The message says what is wrong and what to do; the CLI prints it on one line
    and exits non-zero without a traceback.
    """

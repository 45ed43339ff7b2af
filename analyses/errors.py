"""The error type every stage raises for problems the user can act on."""


class MaestroError(Exception):
    """An error with a message meant for the user: it names the file, line,
    function, packet or field at fault.  Front-ends print the message alone,
    without a traceback, and keep running."""

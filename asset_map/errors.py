"""The one error type the project raises for anything a user can act on.

Each error carries an HTTP status and a message that is safe to show to anybody; details that are not safe
(SQL, paths on the server, tracebacks) go to the log, never into ``user_message``.
"""


class AssetMapError(Exception):
    status = 400

    def __init__(self, user_message, *, status=None):
        super().__init__(user_message)
        self.user_message = user_message
        if status is not None:
            self.status = status


class ConfigError(AssetMapError):
    """A setting or a layer definition is wrong."""

    status = 500


class InputError(AssetMapError):
    """A file or a parameter a user gave cannot be used; the message names file, row, field and value."""

    status = 400


class NotFound(AssetMapError):
    status = 404


class DatabaseUnavailable(AssetMapError):
    status = 503


class QueryTimeout(AssetMapError):
    """A query ran past the statement timeout and the database cancelled it."""

    status = 504


class Forbidden(AssetMapError):
    status = 403


class Unauthorized(AssetMapError):
    """No valid identity: not signed in, or a bearer token that is unknown, expired or revoked."""

    status = 401


class TooManyRequests(AssetMapError):
    """Too many attempts (sign-in); ``retry_after`` says in how many seconds to try again."""

    status = 429

    def __init__(self, user_message, *, retry_after=60):
        super().__init__(user_message)
        self.retry_after = int(retry_after)


class Busy(AssetMapError):
    """Every slot for this kind of work is taken (downloads): try again in ``retry_after`` seconds."""

    status = 503

    def __init__(self, user_message, *, retry_after=5):
        super().__init__(user_message)
        self.retry_after = int(retry_after)


class FormInvalid(InputError):
    """A form with problems: ``problems`` maps each field to what to fix, in the order the form shows them, so
    the page can list them in an error summary and beside each field."""

    def __init__(self, problems):
        self.problems = dict(problems)
        super().__init__(" ".join(self.problems.values()))

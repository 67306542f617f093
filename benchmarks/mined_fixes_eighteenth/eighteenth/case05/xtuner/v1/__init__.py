from . import patch  # noqa: F401

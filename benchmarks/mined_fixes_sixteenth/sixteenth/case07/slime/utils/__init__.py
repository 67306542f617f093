# (benchmark cut: from .arguments import parse_args; __all__ = ["parse_args"])

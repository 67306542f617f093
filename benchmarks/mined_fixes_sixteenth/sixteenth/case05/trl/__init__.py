# (benchmark cut: trl/__init__.py lazy-module exports)

# (benchmark cut: trl/trainer/__init__.py lazy-module exports)

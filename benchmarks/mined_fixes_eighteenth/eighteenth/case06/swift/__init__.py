# (benchmark cut: real swift/__init__.py is a _LazyModule re-exporting arguments, pipelines, trainers, tuners and others)

# (benchmark cut: torchtune/__init__.py contents)

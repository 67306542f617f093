# (benchmark cut: helper re-exports; `dist` is a submodule)

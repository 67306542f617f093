# (benchmark cut: float8_rowwise and jagged_float8_scales re-exports)

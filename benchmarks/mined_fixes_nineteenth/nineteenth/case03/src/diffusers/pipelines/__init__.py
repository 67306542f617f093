# (benchmark cut: lazy import table)

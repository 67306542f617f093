# (benchmark cut: only the class name is needed here)
class QuantizationConfig:
    pass

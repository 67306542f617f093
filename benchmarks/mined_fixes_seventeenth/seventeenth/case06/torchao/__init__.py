# (benchmark cut: real torchao/__init__.py loads C++ extensions and re-exports quantization APIs)

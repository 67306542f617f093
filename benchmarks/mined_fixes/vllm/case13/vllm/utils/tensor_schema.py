from typing import Any, get_type_hints


class TensorShape:

    def __init__(self, *dims, dynamic_dims=None) -> None:
        self.dims = dims
        self.dynamic_dims = dynamic_dims or set()


class TensorSchema:

    def __init__(self, *, validate: bool = True, resolve_bindings=None,
                 **kwargs: Any) -> None:
        for key, value in kwargs.items():
            setattr(self, key, value)

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key, default)

import os


def get_bool_env_var(name: str, default: str = "false") -> bool:
    value = os.getenv(name, default)
    return value.lower() in ("true", "1")


def next_power_of_2(n: int):
    return 1 << (n - 1).bit_length() if n > 0 else 1

# SPDX-License-Identifier: Apache-2.0
# (benchmark cut: platform detection; a CUDA platform stand-in)


class CudaPlatform:

    @classmethod
    def is_pin_memory_available(cls) -> bool:
        return True


current_platform = CudaPlatform()

# SPDX-License-Identifier: Apache-2.0
# Stand-in: only the type name is used.


class QuantizationConfig:
    pass

# SPDX-License-Identifier: Apache-2.0
# (benchmark stub: vLLM's logger wrapper reduced to the standard library)
import logging


def init_logger(name: str) -> logging.Logger:
    return logging.getLogger(name)

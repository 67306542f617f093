# Copyright (c) Meta Platforms, Inc. and affiliates.
# (benchmark cut: torchao / hf_transfer import checks and top-level submodule imports)

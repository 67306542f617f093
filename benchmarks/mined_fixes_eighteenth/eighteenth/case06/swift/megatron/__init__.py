# (benchmark cut: NPU/MindSpeed set-up, init_megatron_env() and the _LazyModule re-exports of pipelines, convert, utils, arguments, model, trainers)

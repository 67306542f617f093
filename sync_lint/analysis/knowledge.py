"""What the linter knows about torch's API: which calls make tensors, move them, or give host values.

Plain tables, shared by every evaluator (the per-file device analysis and the
project summaries). No libcst here: a table is a fact about torch, not about syntax.
"""

from __future__ import annotations

from typing import Iterable

# `torch.complex`, `torch.polar`, `torch.bernoulli` and `torch.poisson` are not among them: they take
# tensors and return where those are.
FACTORIES = frozenset(
    "zeros ones empty full arange range linspace logspace eye rand randn randint randperm "
    "tensor as_tensor scalar_tensor empty_strided normal tril_indices triu_indices".split()
)
LIKE_FACTORIES = frozenset("zeros_like ones_like empty_like full_like rand_like randn_like randint_like".split())
NEW_METHODS = frozenset("new_zeros new_ones new_empty new_full new_tensor".split())
# Ops that cut a tensor into a tuple of tensors on its device (`x.split(sizes)`, `torch.chunk(x, n)`): the
# tuple itself is a Python value (a truth test of it reads nothing), its pieces are tensors.
SPLITTING_OPS = frozenset("split chunk unbind tensor_split hsplit vsplit dsplit split_with_sizes unsafe_split".split())
CPU_FACTORIES = frozenset("from_numpy frombuffer from_file".split())
# Allocators outside `torch.*` factories that place a tensor as `torch.empty(..., device=...)` does: a
# symmetric-memory buffer (`symm_mem.empty(n, device=device)`) is device memory that peers map.
DEVICE_ALLOCATORS = {"torch.distributed._symmetric_memory.empty": "torch.empty"}
# `torch.nn.Module` as imports resolve it.
NN_MODULE_CLASSES = frozenset({"torch.nn.Module", "torch.nn.modules.module.Module"})
# The container types an annotation may name (`list[Tensor]`, `dict[str, Req]`), by their last name.
SEQUENCE_TYPES = frozenset({"list", "List", "Sequence", "MutableSequence", "Iterable", "Iterator", "Collection",
                            "set", "Set", "frozenset", "FrozenSet", "deque", "Deque"})
MAPPING_TYPES = frozenset({"dict", "Dict", "Mapping", "MutableMapping", "OrderedDict", "defaultdict",
                           "DefaultDict"})
CONTAINERS = SEQUENCE_TYPES | MAPPING_TYPES | {"tuple", "Tuple"}
# Calls that build an empty container (with no arguments; `defaultdict` with its default factory).
EMPTY_CONTAINERS = frozenset("dict list OrderedDict deque".split())

# `pin_memory=` flags that hold wherever pinned memory exists: vLLM's (and SGLang's)
# `is_pin_memory_available()` is False only where the platform cannot pin (vLLM 0.33: the CPU platform,
# and WSL kernels older than 4.19.121), and vLLM's `PIN_MEMORY` is its value. A machine with a GPU to
# wait for pins.
PINNED_WHERE_AVAILABLE = frozenset({"PIN_MEMORY", "is_pin_memory_available"})
# Module flags that hold the answer of a test of the platform for an accelerator's absence (SGLang:
# `_is_cpu = is_cpu()`).
CPU_PLATFORM_FLAGS = frozenset({"_is_cpu", "_IS_CPU", "IS_CPU"})
# Tests that the platform is an accelerator other than CUDA (vLLM's `current_platform.is_xpu()`,
# SGLang's `is_npu()` and its `_is_npu = is_npu()` flag), as `other-platform-modules` names them. HIP is
# not among them: ROCm runs torch's CUDA API on AMD GPUs, whose waits the audits read as real.
OTHER_PLATFORM_TESTS = frozenset({"is_npu", "is_xpu", "is_mps", "is_hpu", "is_musa", "is_tpu"})
# The device types (`x.device.type == "mps"`) of tensors that exist only on another machine than a CUDA
# one (not "cpu": a host tensor on a CUDA machine is common, and `if t.device.type == "cpu": t =
# t.to(device)` copies it there).
OTHER_DEVICE_TYPES = frozenset(name[len("is_"):] for name in OTHER_PLATFORM_TESTS)
OTHER_PLATFORM_FLAGS = frozenset({f"_{name}" for name in OTHER_PLATFORM_TESTS} |
                                 {f"_{name.upper()}" for name in OTHER_PLATFORM_TESTS} |
                                 {name.upper() for name in OTHER_PLATFORM_TESTS})


def pins_where_available(spelled: str | None) -> bool:
    """`spelled` (a dotted name, or a called function's) is a flag that pins wherever pinning exists."""
    return spelled is not None and spelled.rsplit(".", 1)[-1] in PINNED_WHERE_AVAILABLE


# torch functions whose result is not a tensor.
TORCH_NON_TENSOR = frozenset(
    "is_tensor is_storage numel equal allclose is_nonzero is_floating_point is_complex "
    "get_default_dtype set_default_dtype manual_seed seed initial_seed no_grad enable_grad "
    "inference_mode set_grad_enabled is_grad_enabled compile jit device dtype Size "
    "get_device_module is_autocast_enabled autocast typename result_type can_cast promote_types "
    "use_deterministic_algorithms are_deterministic_algorithms_enabled set_printoptions "
    "save load Generator Stream Event "
    # Ranks, sizes and device queries answer with Python numbers, strings and tuples
    # (`torch.distributed.get_world_size()`, `torch.cuda.device_count()`, `torch.cuda.mem_get_info()`).
    "get_rank get_world_size get_backend get_global_rank get_group_rank get_process_group_ranks "
    "get_node_local_rank device_count current_device current_device_index get_device_name "
    "get_device_capability get_device_properties get_arch_list memory_allocated memory_reserved "
    "max_memory_allocated max_memory_reserved mem_get_info memory_stats get_num_threads "
    "get_num_interop_threads set_default_device".split()
)
# Namespaces whose functions answer questions about the program, not about data: flags,
# ranks, compiler state (`torch.compiler.is_compiling()`, `torch.distributed.get_rank()`).
TORCH_NON_TENSOR_NAMESPACES = ("torch.compiler", "torch.jit", "torch._dynamo", "torch.backends")


# torch functions that answer with a device whose side no code here decides: `torch.get_default_device()` is
# the CPU unless `torch.set_default_device` or a `with torch.device(d):` block chose another.
TORCH_DEVICE_RESULTS = frozenset({"get_default_device"})


def torch_returns_device(qualified: str) -> bool:
    """Whether a torch function returns a `torch.device` of unknown side (`TORCH_DEVICE_RESULTS`)."""
    namespace, _, last = qualified.rpartition(".")
    return namespace == "torch" and last in TORCH_DEVICE_RESULTS


def torch_returns_python(qualified: str) -> bool:
    """Whether a torch function returns a Python value rather than a tensor: the listed ones, the
    `is_*` predicates (`torch.distributed.is_initialized()`, `torch.is_tensor(x)`: Python bools),
    and the functions of the namespaces above."""
    namespace, _, last = qualified.rpartition(".")
    return (last in TORCH_NON_TENSOR or last.startswith("is_")
            or namespace.startswith(TORCH_NON_TENSOR_NAMESPACES) and not last[:1].isupper())


DTYPE_NAMES = {
    "bool": "bool",
    "uint8": "int", "int8": "int", "int16": "int", "short": "int", "int32": "int", "int": "int",
    "int64": "int", "long": "int", "uint16": "int", "uint32": "int", "uint64": "int",
    "float16": "float", "half": "float", "bfloat16": "float", "float32": "float", "float": "float",
    "float64": "float", "double": "float", "complex64": "float", "complex128": "float",
    "float8_e4m3fn": "float", "float8_e5m2": "float",
}
# Tensor methods and attributes that give plain Python values or metadata.
METADATA_METHODS = frozenset(
    "size dim ndimension numel nelement element_size stride data_ptr is_contiguous get_device "
    "is_pinned storage_offset is_floating_point is_complex is_signed untyped_storage storage "
    "has_names is_set_to is_shared dim_order is_inference is_conj is_neg is_same_size is_coalesced".split()
)
METADATA_ATTRS = frozenset(
    "shape dtype device is_cuda is_cpu is_meta is_sparse is_quantized ndim layout names "
    "requires_grad is_leaf grad_fn itemsize nbytes".split()
)
TENSOR_ATTRS = frozenset("T mT H mH data grad real imag".split())
# The fields of what torch's reductions along a dimension return (`max`/`min`/`median`/`mode` with
# `dim`, `topk`, `sort`, `kthvalue`, `cummax`, `cummin`): tensors on the input's device, the indices
# of dtype int64 (the dtype kind each field has; None: the input's).
RESULT_FIELDS = {"values": None, "indices": "int"}
# The tensor fields of what a model returns (Hugging Face's `ModelOutput`s: `out.loss`, `out.logits`):
# read off a value taken for a module's output tensor (`placed_output`), each is a
# tensor where that output is. A tensor has no attribute of these names, so reading one says the value is
# such an output object. (`hidden_states` and `attentions` are tuples, and `past_key_values` a cache.)
OUTPUT_FIELDS = {"loss": "float", "logits": "float", "last_hidden_state": "float", "pooler_output": "float",
                 "start_logits": "float", "end_logits": "float", "prediction_logits": "float",
                 "image_embeds": "float", "text_embeds": "float", "aux_loss": "float", "z_loss": "float"}
HOST_VALUE_METHODS = frozenset({"item", "tolist"})
# The legacy tensor types `t.type(torch.BoolTensor)` converts to, with the torch dtype each holds: the
# plain ones live on the CPU (`torch.BoolTensor`), the `torch.cuda.` ones on the GPU.
LEGACY_TENSOR_TYPES = {
    "FloatTensor": "float32", "DoubleTensor": "float64", "HalfTensor": "float16", "BFloat16Tensor": "bfloat16",
    "ByteTensor": "uint8", "CharTensor": "int8", "ShortTensor": "int16", "IntTensor": "int32",
    "LongTensor": "int64", "BoolTensor": "bool",
}


# The keywords by which torch functions take the tensors their result is computed from
# (`F.linear(x, weight=w)`: where the weight is, the result is).
TENSOR_KEYWORDS = frozenset({"input", "other", "out", "self", "condition", "tensors", "indices", "mask", "weight",
                             "bias"})
# The builtins whose result is a Python number of one type whatever they are given (`len(x)` is an int).
CONVERTED_NUMBERS = {"len": "int", "int": "int", "float": "float", "bool": "bool"}


def dtype_kind(name: str) -> str | None:
    """The kind of a torch dtype named `name` (`"float32"` -> `"float"`, `"uint8"` -> `"int"`)."""
    return DTYPE_NAMES.get(name)


def legacy_tensor_type(qualified: str) -> tuple[bool, str] | None:
    """`torch.BoolTensor` -> (False, "bool"), `torch.cuda.LongTensor` -> (True, "int64"): whether the
    legacy tensor type is a GPU one, and the torch dtype it holds; None for any other name."""
    prefix, _, last = qualified.rpartition(".")
    if last not in LEGACY_TENSOR_TYPES or prefix not in ("torch", "torch.cuda"):
        return None
    return prefix == "torch.cuda", LEGACY_TENSOR_TYPES[last]


def made_by_constructor(qualified: str) -> tuple[bool, str] | None:
    """What calling `qualified` makes, as `legacy_tensor_type` says of a legacy type's call, and for
    `torch.Tensor(data)`, the legacy constructor: a float32 tensor on the CPU, as `torch.FloatTensor`'s
    (TransformerEngine built its padding mask so, then copied it with `.to(device="cuda")`). It stays
    on the CPU under `torch.set_default_device`: checked on torch 2.13 (CPU build), with the default
    device `meta`, `torch.Tensor([1.0])` was on the CPU and `torch.zeros(1)` on `meta`."""
    if qualified == "torch.Tensor":
        return False, "float32"
    return legacy_tensor_type(qualified)


# Library functions whose tensor arguments must be CUDA tensors: flash-attn 2's C++ entry points check
# each one (`CHECK_DEVICE(cu_seqlens_q)`, csrc/flash_attn/flash_api.cpp) and raise for a CPU tensor, so a
# parameter handed to one is a GPU tensor, as one handed to a Triton launch is (`Inference._launched`).
_FLASH_ATTN_ENTRY_POINTS = ("flash_attn_func", "flash_attn_varlen_func", "flash_attn_with_kvcache",
                            "flash_attn_qkvpacked_func", "flash_attn_kvpacked_func",
                            "flash_attn_varlen_qkvpacked_func", "flash_attn_varlen_kvpacked_func",
                            "flash_attn_unpadded_func", "_flash_attn_forward", "_flash_attn_varlen_forward")
CUDA_ONLY_FUNCTIONS = frozenset(f"{module}.{name}" for module in ("flash_attn", "flash_attn.flash_attn_interface")
                                for name in _FLASH_ATTN_ENTRY_POINTS)


# The data loader whose iteration yields the batches its collate stacks in host memory (`loader_batches`).
DATA_LOADERS = frozenset({"torch.utils.data.DataLoader", "torch.utils.data.dataloader.DataLoader"})


# torch.cuda / torch.accelerator / torch calls that return a stream or an event handle.
STREAM_HANDLES = frozenset({"Stream", "ExternalStream", "current_stream", "default_stream"})
EVENT_HANDLES = frozenset({"Event"})


def torch_handle_kind(qualified: str | None) -> str | None:
    """"event" or "stream" for a torch event or stream class (`torch.cuda.Event`, `torch.Stream`)."""
    if not qualified or not qualified.startswith("torch."):
        return None
    last = qualified.rsplit(".", 1)[-1]
    if last in EVENT_HANDLES:
        return "event"
    return "stream" if last in ("Stream", "ExternalStream") else None


# Methods that return a view of their receiver: on pinned memory the view is pinned too.
VIEW_METHODS = frozenset(
    "view view_as narrow reshape flatten squeeze unsqueeze t transpose permute select expand "
    "expand_as as_strided unflatten movedim swapaxes detach".split()
)
# What holds the receiver's own memory, pinned as it is: its views, and the tensors of a batch the analysis
# holds as one tensor though it may be a dict (a data loader's: `{k: v.to(d, non_blocking=True) for k, v
# in batch.items()}` copies from the pinned memory the loader made).
SHARES_MEMORY = VIEW_METHODS | frozenset({"items", "values"})
BOOL_RESULT = frozenset(
    "eq ne lt gt le ge equal isnan isinf isfinite isneginf isposinf isclose logical_and logical_or "
    "logical_not logical_xor isin signbit bool".split()
)
INT_RESULT = frozenset(
    "argmax argmin argsort nonzero argwhere bucketize searchsorted multinomial randint randperm "
    "long int short byte char bincount count_nonzero".split()
)
FLOAT_RESULT = frozenset("float half bfloat16 double".split())
# Dtype casts that only a tensor has (`nn.Module` has `float`/`half`/`double`/`bfloat16`, NumPy none of
# these): `ids.long()` is a tensor whatever `ids` was known to be.
TENSOR_ONLY_CASTS = frozenset("long int short byte char bool".split())
# Library helpers that are integer arithmetic on their arguments, whatever those are: `triton.cdiv(x, d)`
# is `(x + d - 1) // d`, so of a tensor it is a tensor on that tensor's device (flash-linear-attention's
# `triton.cdiv(prepare_lens(cu_seqlens), chunk_size).tolist()`, in vLLM and SGLang).
# Matched by their last two names: projects re-export `triton` (`from vllm.triton_utils import triton`).
ARITHMETIC_CALLS = frozenset({"triton.cdiv"})


def arithmetic_call(qualified: str) -> bool:
    """Whether a call of this (import-resolved) name is integer arithmetic on its arguments."""
    return ".".join(qualified.rsplit(".", 2)[-2:]) in ARITHMETIC_CALLS


def cuda_device_module(device: str | None) -> bool:
    """Whether `torch.get_device_module(device)` may be `torch.cuda`: no argument or one not written
    out (`None`), or a device string for CUDA; `"cpu"` gives `torch.cpu`, `"xpu"` another platform's."""
    return device is None or device.startswith("cuda")


# Reductions and scans that count a bool input: `mask.sum()` is int64, not a mask.
COUNTING = frozenset("sum nansum prod cumsum cumprod".split())
# Reductions that give a 0-dim tensor when called without `dim`.
REDUCTIONS = frozenset(
    "sum mean max min prod any all amax amin argmax argmin count_nonzero norm std var median "
    "logsumexp nansum nanmean dot vdot trace".split()
)


def result_dtype(op: str, dtype: str | None, *, by_method: bool, arguments: int) -> str | None:
    """The dtype class of `op`'s result given its input's (`dtype`): a comparison makes a mask, a
    mask stays one through views and copies, and a count of one is an int."""
    if op in ("any", "all"):
        dtype = "bool"
    if dtype == "bool" and op in COUNTING:
        dtype = "int"
    if op == "where" and not by_method:
        # `torch.where(cond)` gives index tensors; `torch.where(cond, a, b)` takes a's and b's dtype, not cond's.
        dtype = "int" if arguments == 1 else None
    if op in BOOL_RESULT:
        return "bool"
    if op in INT_RESULT:
        return "int"
    if op in FLOAT_RESULT:
        return "float"
    return dtype


ELEMENTWISE = frozenset(
    "abs neg exp log log2 log1p sqrt rsqrt sigmoid tanh relu gelu silu clamp clip floor ceil round "
    "sign add sub mul div true_divide floor_divide remainder fmod pow where masked_fill maximum "
    "minimum clone contiguous float half bfloat16 double long int short bool to cumsum cumprod "
    "softmax log_softmax eq ne lt gt le ge isnan isinf isfinite logical_not logical_and "
    "logical_or bitwise_and bitwise_or bitwise_not fill_ zero_ add_ sub_ mul_ div_ clamp_ "
    "masked_fill_ copy_ index_fill_ scatter_ scatter_add_ nan_to_num lerp".split()
)
# A stand-in object whose attributes are exactly the keywords its constructor is given (a unit test's
# `SimpleNamespace(device=torch.device("cpu"))` passed as a model).
NAMESPACE = "types.SimpleNamespace"
# The mark (first item) of an object of a library class that carries the tensors its construction was
# given by keyword as the fields of those names (Megatron's `PackedSeqParams(cu_seqlens_q=...)`, a
# dataclass); at most this many keywords are read.
LIBRARY_FIELDS = "library-fields"
MAX_LIBRARY_FIELDS = 16
# torch functions that join a sequence of tensors into one tensor.
JOINING_OPS = frozenset("cat concat concatenate stack hstack vstack dstack column_stack row_stack block_diag".split())
ACCELERATOR_NAMES = ("cuda", "xpu", "mps", "npu", "hpu")


def class_like(dotted: str) -> bool:
    """A name spelled as a class is (`SentenceTransformer`, `flashinfer.BatchPrefillWrapper`): calling
    it builds an object."""
    return dotted.rpartition(".")[2][:1].isupper()


# The class methods that load a model (`AutoModelForCausalLM.from_pretrained(name)`): an `nn.Module`.
MODEL_LOADERS = frozenset({"from_pretrained", "from_config", "_from_config"})
# What returns the function it is given, wrapped (compiled, vectorised, differentiated): calling the
# wrapper runs the function with the same arguments (`torch.compile(step)(x)` runs `step(x)`).
FUNCTION_WRAPPERS = frozenset({
    "torch.compile", "torch.vmap", "torch.func.vmap", "torch.func.grad", "torch.func.grad_and_value",
    "torch.func.jacrev", "torch.func.jacfwd", "torch.func.functionalize",
    "functorch.vmap", "functorch.grad", "functorch.grad_and_value",
})
# The wrappers whose calls return what the function does (a gradient transform returns gradients).
SAME_RESULT_WRAPPERS = frozenset({"torch.compile", "torch.func.functionalize"})
# What runs the function it is given on the arguments after it (`checkpoint(layer, hidden, mask)` runs
# `layer(hidden, mask)`), with the keywords each takes for itself.
FUNCTION_RUNNERS = {
    "torch.utils.checkpoint.checkpoint": frozenset({"use_reentrant", "preserve_rng_state", "context_fn",
                                                    "determinism_check", "debug", "early_stop"}),
}
# `device_map=` values with which `from_pretrained` spreads a model over the accelerators (accelerate).
DISPATCHING_DEVICE_MAPS = frozenset({"auto", "balanced", "balanced_low_0", "sequential"})
# What classes that also load with `from_pretrained` are called whose objects are no module.
_NOT_MODELS = ("Config", "Tokenizer", "TokenizerFast", "Processor", "FeatureExtractor", "Pipeline", "Scheduler",
               "Extractor", "ProcessorFast")


def model_loader(qualified: str) -> bool:
    """`transformers.AutoModelForCausalLM.from_pretrained`, `diffusers.UNet2DConditionModel.from_config`:
    a library loader that returns a model, named so (a class with `Model` in its name, or `...ForX`),
    not a tokenizer's, processor's or configuration's."""
    owner, _, method = qualified.rpartition(".")
    if method not in MODEL_LOADERS or not owner:
        return False
    cls = owner.rpartition(".")[2]
    if not cls[:1].isupper() or cls.endswith(_NOT_MODELS):
        return False
    return "Model" in cls or any(cls[i:i + 3] == "For" and cls[i + 3:i + 4].isupper() for i in range(1, len(cls)))


def device_kind(text: str) -> str | None:
    """"cpu" or "gpu" for a string naming a device type, with an index or not (`"cuda:0"`); None otherwise."""
    kind = text.strip().lower().split(":", 1)[0]
    if kind == "cpu":
        return "cpu"
    return "gpu" if kind in ACCELERATOR_NAMES else None


MODULE_NAMES = frozenset({"model", "module", "net", "network", "submodule"})
# Methods a library base class gives its subclasses that move what they are given to the training
# device: Hugging Face's `Trainer._prepare_inputs(inputs)` (`_prepare_input` for one value) sends every
# tensor of a batch, nested in dicts, lists or tuples, to `self.args.device`. TRL's trainers call
# `super()._prepare_inputs(prompt_inputs)` on the processor's output.
TRAINER_CLASSES = frozenset({"transformers.Trainer", "transformers.trainer.Trainer", "transformers.Seq2SeqTrainer",
                             "transformers.trainer_seq2seq.Seq2SeqTrainer"})
PLACING_METHODS = {"_prepare_inputs": TRAINER_CLASSES, "_prepare_input": TRAINER_CLASSES}
# Launchers that place what their methods are given on the training device: accelerate's
# `Accelerator.prepare` and Lightning Fabric's `setup*` return a model moved there and data loaders whose
# batches arrive there (an optimizer or scheduler comes back as it was). By the receiver's class, or by
# the name it is held in (`self.accelerator`, a `fabric` passed in).
PREPARING_METHODS = {
    "accelerate.Accelerator": frozenset({"prepare", "prepare_model", "prepare_data_loader"}),
    "accelerate.accelerator.Accelerator": frozenset({"prepare", "prepare_model", "prepare_data_loader"}),
    "lightning.Fabric": frozenset({"setup", "setup_module", "setup_dataloaders"}),
    "lightning.fabric.Fabric": frozenset({"setup", "setup_module", "setup_dataloaders"}),
    "lightning.fabric.fabric.Fabric": frozenset({"setup", "setup_module", "setup_dataloaders"}),
    "lightning_fabric.Fabric": frozenset({"setup", "setup_module", "setup_dataloaders"}),
}
# The preparing methods that take only data loaders.
LOADER_PREPARERS = frozenset({"setup_dataloaders", "prepare_data_loader"})
PREPARER_NAMES = {"accelerator": PREPARING_METHODS["accelerate.Accelerator"],
                  "fabric": PREPARING_METHODS["lightning.Fabric"]}
# `ctx.saved_tensors` in an autograd function's `backward`: what `ctx.save_for_backward(...)` was given in
# `forward` (or, since torch 2.0, in `setup_context`); `saved_variables` is its deprecated name.
SAVED_TENSORS = frozenset({"saved_tensors", "saved_variables"})
SAVING_METHODS = ("forward", "setup_context")

# Lightning's step hooks: the trainer moves each batch to the module's device before calling them.
LIGHTNING_MODULES = frozenset({
    "lightning.LightningModule", "lightning.pytorch.LightningModule", "lightning.pytorch.core.LightningModule",
    "pytorch_lightning.LightningModule", "pytorch_lightning.core.LightningModule",
    "pytorch_lightning.core.lightning.LightningModule", "lightning.pytorch.core.module.LightningModule",
})
LIGHTNING_STEP_HOOKS = frozenset({"training_step", "validation_step", "test_step", "predict_step"})


# Every method name of `PREPARING_METHODS`: most method calls are none of them, and need no more look.
PREPARING_NAMES = frozenset().union(*PREPARING_METHODS.values())


def preparing_method(classes: "Iterable[str]", receiver_name: str | None, method: str) -> bool:
    """Whether `receiver.method(...)` places what it is given (`PREPARING_METHODS`), by the receiver's
    library class or, when that is not known, the name it is held in."""
    if method not in PREPARING_NAMES:
        return False
    if any(method in PREPARING_METHODS.get(cls, ()) for cls in classes):
        return True
    return receiver_name is not None and method in PREPARER_NAMES.get(receiver_name, ())


# Names of a loss function held in a variable or attribute whose value is built at run time
# (`self._loss_fn = config.instantiate(cfg.loss)`, `criterion = build_loss(cfg)`): called on the
# model's output, it returns the loss, a 0-d tensor on that output's device.
LOSS_CALLEES = frozenset({"loss_fn", "loss_func", "loss_function", "loss_fct", "loss_module", "criterion"})
# What returns the total norm of the gradients it clips or measures, a 0-d tensor computed on their device
# (`clip_grad_norm_`: `total_norm = torch.linalg.vector_norm(torch.stack(norms))` on the first gradient's
# device, in `torch/nn/utils/clip_grad.py`): torch's functions, and the launchers' methods of that name
# (accelerate's `Accelerator.clip_grad_norm_`, FSDP's `FullyShardedDataParallel.clip_grad_norm_`).
GRADIENT_NORM_FUNCTIONS = frozenset(f"torch.nn.utils.{module}{name}" for module in ("", "clip_grad.")
                                    for name in ("clip_grad_norm_", "clip_grad_norm", "get_total_norm"))
GRADIENT_NORM_METHODS = frozenset({"clip_grad_norm_"})
# The classes of `torch.nn` whose instances are no modules.
NN_NON_MODULES = frozenset({"Parameter", "Buffer", "UninitializedParameter", "UninitializedBuffer"})


def module_state_class(qualified: str) -> bool:
    """`torch.nn.Parameter`, `torch.nn.Buffer` (also as `torch.nn.parameter.*`): a tensor held by a module."""
    namespace, _, last = qualified.rpartition(".")
    return last in NN_NON_MODULES and namespace in ("torch.nn", "torch.nn.parameter")


NON_TENSOR_ANNOTATIONS = frozenset(
    "int float bool str bytes list dict tuple set List Dict Tuple Set Sequence Mapping "
    "ndarray Module device dtype".split()
)


# A size argument of a factory, as both evaluators describe it: `n` (>= 0) for a tuple or list display
# of n sizes, INT_SIZE for one integer, None for a value that may be either (`torch.zeros(shape)`).
INT_SIZE = "int"


def factory_rank(name: str, positional: list[int | str | None], size_keyword: int | str | None = None,
                 has_size_keyword: bool = False) -> int | None:
    """The rank of the tensor `torch.<name>(...)` makes, from its size arguments (described as above, in
    order):
    `torch.zeros(n, 4)` is 2-D, `torch.zeros((n, 4))` too, `torch.zeros(n)` 1-D when `n` is known to be
    one integer; None where it depends on what a value holds."""
    if name in ("arange", "range", "linspace", "logspace", "randperm"):
        return 1
    if name == "eye":
        return 2
    if name == "scalar_tensor":
        return 0
    if name in LIKE_FACTORIES or name == "normal" or name in ("tensor", "as_tensor"):
        return None
    sizes = positional
    if has_size_keyword:
        sizes = [size_keyword]
    elif name == "full":
        sizes = positional[:1]
    elif name == "randint":
        sizes = positional[-1:]
    if len(sizes) == 1:
        only = sizes[0]
        if isinstance(only, int) and not isinstance(only, bool):
            return only
        return 1 if only == INT_SIZE else None
    if sizes and all(not isinstance(kind, int) for kind in sizes):
        return len(sizes)  # `torch.zeros(n, k)`: several sizes are each one integer, or the call raises
    return None

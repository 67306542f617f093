"""What the linter knows about a value: its device, and why it believes so.

A `Fact` is immutable. Besides the device it carries what rules need to stay
precise (rank, dtype class) and its provenance (the node and reason that
established it), so every finding can say why: "`x` is on the GPU: assigned
from `torch.zeros(..., device=device)` at line 5".
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from enum import Enum
from typing import TYPE_CHECKING, Callable, Iterable

from sync_lint.analysis.knowledge import (
    LIBRARY_FIELDS,
    LOSS_CALLEES,
    MAX_LIBRARY_FIELDS,
    MODULE_NAMES,
    device_kind,
    dtype_kind,
)

if TYPE_CHECKING:
    import libcst as cst


class Device(str, Enum):
    GPU = "gpu"
    CPU = "cpu"
    PINNED = "pinned-cpu"
    NOT_TENSOR = "not-a-tensor"
    UNKNOWN = "unknown"


# What a non-tensor value is, when we know: lets `.to(x)` tell a device from a dtype,
# and `arr[i].item()` on NumPy stay quiet. From the project index also: "object" (an
# instance of the classes in `refs`), "class", "callable" (functions in `refs`),
# "tuple" and "dict" (elements in `items`), "device-module" (`torch.cuda`, ...).
ValueKind = str


@dataclass(frozen=True)
class Fact:
    device: Device
    tensor_like: bool = False  # for UNKNOWN: the value looks like a tensor
    # Only a naming convention (`*_gpu`, `*_cpu`) says so: `use_gpu` may be a flag.
    from_name: bool = False
    # A CPU tensor that may be pinned: `pin_memory=<flag>`, or only a name or a
    # setting says it is on the CPU. Only code that allocates proves pageable memory.
    pinning_unknown: bool = False
    ndim: int | None = None
    dtype: str | None = None  # "bool" | "int" | "float"
    value_kind: ValueKind | None = None
    device_value: Device | None = None  # for value_kind == "device": which device
    # What the project index knows of a non-tensor value (see ValueKind).
    refs: frozenset[str] = frozenset()
    items: tuple = ()  # "tuple": element facts; "dict": (key, fact) pairs
    # Only a convention learned from the repository says so (confidence "convention").
    convention: bool = False
    # A list known to hold nothing yet (`vals = []`): joined with a list that holds something, the
    # other's elements (a loop that appends may run zero times; then there is nothing to read).
    empty: bool = False
    # Provenance.
    subject: str | None = None  # the name the fact is about ("x", "self.buf")
    reason: str = ""  # e.g. "assigned from {code}" — {code} is the origin's source
    origin: "cst.CSTNode | None" = None
    via: "Fact | None" = None
    where: str | None = None  # "path:line" of a step outside the file being checked

    def lattice(self) -> tuple:
        """What the fact says, without its provenance: two facts with equal lattices agree."""
        return (self.device, self.tensor_like, self.value_kind, self.device_value, self.refs,
                tuple(_item_lattice(item) for item in self.items), self.pinning_unknown, self.empty,
                self.dtype if self.is_tensor or self.is_unknown_tensor else None)

    @property
    def chain(self) -> "list[Fact]":
        """This fact and the facts it was derived from, nearest first."""
        out: list[Fact] = []
        current: Fact | None = self
        while current is not None and len(out) < 12:
            out.append(current)
            current = current.via
        return out

    @property
    def by_convention(self) -> bool:
        """Some step of the chain rests on a naming convention or a learned repository convention."""
        return any(f.convention or f.from_name for f in self.chain)

    @property
    def is_gpu(self) -> bool:
        return self.device is Device.GPU

    @property
    def is_cpu(self) -> bool:
        return self.device in (Device.CPU, Device.PINNED)

    @property
    def known_pageable(self) -> bool:
        """Host memory the program provably allocated unpinned."""
        return self.device is Device.CPU and not self.pinning_unknown

    @property
    def is_tensor(self) -> bool:
        return self.device in (Device.GPU, Device.CPU, Device.PINNED)

    @property
    def is_unknown_tensor(self) -> bool:
        return self.device is Device.UNKNOWN and self.tensor_like

    def as_subject(self, subject: str, reason: str, origin: cst.CSTNode | None) -> "Fact":
        """This fact re-told as being about `subject` (an assignment target). The fact itself stays a
        step of the chain when it is about another name, or happened elsewhere (`make` returns
        `torch.zeros(...)` in another module): the assignment's text does not tell either."""
        upstream = self if (self.subject is not None and self.subject != subject) or self.where is not None \
            or self.reason.endswith(ON_ANOTHER_PATH) else self.via  # why a device is only a convention
        return replace(self, subject=subject, reason=reason, origin=origin, via=upstream)


def replace(fact: Fact, **changes: object) -> Fact:
    """A copy of `fact` with `changes`: `dataclasses.replace` without its per-call checks (a hot path)."""
    new = object.__new__(Fact)
    state = dict(fact.__dict__)
    state.update(changes)
    object.__setattr__(new, "__dict__", state)
    return new


def map_text(fact: Fact, change: Callable[[str], str]) -> Fact:
    """`fact` with `change` applied to the provenance text of every step (its reason and where, and
    those of the facts it came from and holds): how cached evidence follows a file's lines."""
    return replace(fact, reason=change(fact.reason), where=change(fact.where) if fact.where is not None else None,
                   via=map_text(fact.via, change) if fact.via is not None else None,
                   items=tuple(_map_item_text(item, change) for item in fact.items))


def _map_item_text(item: object, change: Callable[[str], str]) -> object:
    if isinstance(item, Fact):
        return map_text(item, change)
    if isinstance(item, tuple):
        return tuple(_map_item_text(part, change) for part in item)
    return item


def _item_lattice(item: object) -> object:
    if isinstance(item, Fact):
        return item.lattice()
    if isinstance(item, tuple):
        return tuple(_item_lattice(part) for part in item)
    return item


def detached(fact: Fact) -> Fact:
    """The fact without the syntax nodes of the file it was made in (origins, and the steps that lead
    to them), for an answer that outlives that file: the project inference memoises what a call
    returns for its arguments and hands the same answer to the next file's call."""
    items = tuple(_detached_item(item) for item in fact.items)
    if fact.origin is None and fact.via is None and items == fact.items:
        return fact
    reason = fact.reason if "{code}" not in fact.reason else ""
    via = None if fact.via is None or fact.via.origin is not None else detached(fact.via)
    # Steps dropped with the file's syntax may have rested on a convention: the fact still does.
    return replace(fact, origin=None, via=via, items=items, reason=reason,
                   convention=fact.convention or (fact.by_convention and not (via is not None and via.by_convention)))


def _detached_item(item: object) -> object:
    if isinstance(item, Fact):
        return detached(item)
    if isinstance(item, tuple):
        return tuple(_detached_item(part) for part in item)
    return item


UNKNOWN = Fact(Device.UNKNOWN)
PYTHON = Fact(Device.NOT_TENSOR, value_kind="python")
# `{}`: a dict that the stores which follow fill (`Binder.store_entry`).
EMPTY_DICT = Fact(Device.NOT_TENSOR, value_kind="dict", empty=True)
# `nn.Parameter(t)`, `nn.Buffer(t)`: a tensor that moves with its module (`model.to(device)`), so where it
# is made says nothing of where it is when the module runs.
MODULE_STATE = Fact(Device.UNKNOWN, tensor_like=True,
                    reason="a parameter or buffer of a module, on whatever device the module is moved to")


def module_state(made: Fact) -> Fact:
    """`nn.Parameter(t)`, `nn.Buffer(t)`, `register_buffer("x", t)`: `MODULE_STATE`, unless `t` is made
    on the GPU by what the code says (not a convention): a module whose own code puts its state on
    the accelerator keeps it there unless it is moved back, which serving and training steps do not do."""
    if not made.is_gpu or made.by_convention:
        return MODULE_STATE
    return replace(made, reason=f"module state made on the GPU ({made.reason})" if made.reason else
                   "module state made on the GPU")


NUMPY = Fact(Device.NOT_TENSOR, value_kind="numpy")
MODULE = Fact(Device.NOT_TENSOR, value_kind="module")  # a Python module
# An `nn.Module` of a class not known here: declared `nn.Module`, or named like one (`model`).
NN_MODULE = Fact(Device.NOT_TENSOR, value_kind="nn-module")
# What a module's methods that return the module itself are called.
MODULE_MOVES = frozenset({"to", "cuda", "cpu", "half", "float", "bfloat16", "eval", "train", "requires_grad_"})
# A function's `**kwargs`: read by key, it may be one of vLLM's multimodal inputs (`Inference.multimodal_input`).
KWARGS = Fact(Device.NOT_TENSOR, value_kind="kwargs")
DTYPE = Fact(Device.NOT_TENSOR, value_kind="dtype")
NONE = Fact(Device.NOT_TENSOR, value_kind="none")
RANGE = Fact(Device.NOT_TENSOR, value_kind="range")  # `range(...)`: iterating it gives Python ints


def host_list(subject: str = "") -> Fact:
    """A Python list of numbers (`ids: list[int]`)."""
    return Fact(Device.NOT_TENSOR, value_kind="list", items=(replace(PYTHON, dtype="int"),), subject=subject)


def is_host_list(fact: Fact) -> bool:
    """A Python list whose elements are known numbers: as an index of a GPU tensor it is built as a CPU
    tensor and copied over (a list holding tensors is read as a tuple of indices instead)."""
    return fact.value_kind == "list" and bool(fact.items) and all(
        item.value_kind == "python" and item.dtype != "str" for item in fact.items)


def device_string(text: str) -> bool:
    """Whether a string names a device (`"cpu"`, `"cuda:0"`, `"meta"`), as `torch.device` would read it."""
    return device_kind(text) is not None or text.strip().lower().split(":", 1)[0] == "meta"


def string_device(text: str) -> Device | None:
    """The device a device string names: the CPU, an accelerator (GPU), or None for `meta` and for a
    string that names no device."""
    kind = device_kind(text)
    return Device.CPU if kind == "cpu" else Device.GPU if kind == "gpu" else None


def string_fact(text: str) -> Fact:
    """A Python string that keeps its text (in `reason`, as the index's values keep it)."""
    return Fact(Device.NOT_TENSOR, value_kind="python", dtype="str", reason=text)


def string_text(fact: Fact) -> str | None:
    """The text of a string fact: the literal it was read from in this file (the binder keeps it as the
    origin), or the text the index's values keep in `reason`; None when it is not known."""
    if fact.dtype != "str":
        return None
    text = getattr(fact.origin, "evaluated_value", None)  # a `SimpleString` (no libcst import here)
    if isinstance(text, str):
        return text
    return fact.reason if fact.reason and "{" not in fact.reason else None


def device_value(device: Device, reason: str = "", origin: cst.CSTNode | None = None) -> Fact:
    return Fact(Device.NOT_TENSOR, value_kind="device", device_value=device, reason=reason, origin=origin)


def tensor_type(on_gpu: bool, dtype: str, reason: str = "") -> Fact:
    """A legacy tensor type (`torch.cuda.FloatTensor`, `torch.LongTensor`), as a value: calling it makes a
    tensor on its device (`made_by_tensor_type`). `dtype` is the torch dtype's name (`"float32"`)."""
    return Fact(Device.NOT_TENSOR, value_kind="tensor-type", device_value=Device.GPU if on_gpu else Device.CPU,
                dtype=dtype_kind(dtype), reason=reason)


def made_by_tensor_type(kind: Fact, ndim: int | None, reason: str = "", origin: cst.CSTNode | None = None) -> Fact:
    """What calling a legacy tensor type makes (`torch.cuda.FloatTensor([norm])`): a tensor on its device,
    of its dtype; of no known device where the type is one of several platforms'."""
    device = kind.device_value if kind.device_value in (Device.GPU, Device.CPU) else Device.UNKNOWN
    return Fact(device, tensor_like=device is Device.UNKNOWN, ndim=ndim, dtype=kind.dtype, reason=reason,
                origin=origin)


def constructed(classes: frozenset[str]) -> Fact:
    """An object that `Cls(...)` built: of exactly these classes, so a call on it reaches
    their own methods and not the overrides of their subclasses."""
    return Fact(Device.NOT_TENSOR, value_kind="object", refs=classes, items=("exact",))


# The reason of `pieces_of`'s facts, by which `join` tells them from a list display of one tensor.
PIECES = "the pieces a tensor is cut into"


def pieces_of(tensor: Fact, op: str) -> Fact:
    """The tuple of tensors a splitting op (`SPLITTING_OPS`) cuts `tensor` into: alike pieces on its device,
    of its rank (`unbind`: one less)."""
    ndim = (tensor.ndim - 1 if tensor.ndim else None) if op == "unbind" else tensor.ndim
    # A subject of its own keeps this step in the chain of the name it is bound to (`Fact.as_subject`).
    return Fact(Device.NOT_TENSOR, value_kind="list", items=(replace(tensor, ndim=ndim),), subject=f"{op}(...)",
                reason=f"{PIECES} by `{op}`")


def dict_entry(container: Fact, key: str | None, whole: bool = False) -> Fact | None:
    """`d[key]` of a dict this code built (`{"k": t}`, a comprehension, `d[name] = t`): the entry under
    the literal `key`, else what its entries under keys known only at run time hold, or None when the
    dict says nothing of it. `key` None (known only at run time): those entries; with `whole`, where
    every store into the dict is known (one function built it), the join of all its entries."""
    if container.value_kind != "dict" or not container.items:
        return None
    if key is None and not whole:
        # A dict the project holds in a field may be filled elsewhere under run-time keys (SGLang's
        # `self.target_verify_metadata_topk_swa[bs] = metadata_swa` beside its literal tensor entries).
        return next((fact for entry, fact in container.items if entry is None), None)
    if key is None:
        # Only a dict holding tensors: a table of functions or settings read with a key known at run
        # time is one of them, not their join.
        facts = [fact for _key, fact in container.items]
        return functools.reduce(join, facts) if any(fact.is_tensor for fact in facts) else None
    found = None
    for entry, fact in container.items:
        if entry == key or entry is None and found is None:
            found = fact
    return found


def put_entry(entries: "dict[str | None, Fact]", key: str | None, fact: Fact) -> None:
    """`d[key] = fact` into a dict's entries: a literal key holds the last value stored, a key known only
    at run time (None) every one of them."""
    entries[key] = join(entries[key], fact) if key is None and key in entries else fact


def container_method(container: Fact, method: str, built_here: bool = False) -> Fact | None:
    """A method of a list or of a dict's values whose elements are alike (`reqs.values()`, `d.get(k)`,
    `d.items()`), or None when it is not one of those. `built_here`: `container` is a dict this function
    built (every entry known), whose `.values()`/`.items()` read the join of its entries."""
    values = dict_entry(container, None, whole=True) if built_here else None
    if values is not None:
        if method == "copy":
            return container
        # The values of a dict holding tensors, joined: `for k, v in d.items()` reads any of them.
        container = Fact(Device.NOT_TENSOR, value_kind="list", items=(values,))
    if container.value_kind != "list" or not container.items:
        return None
    element = container.items[0]
    if method in ("values", "copy"):
        return container
    if method == "items":
        return Fact(Device.NOT_TENSOR, value_kind="list",
                    items=(Fact(Device.NOT_TENSOR, value_kind="tuple", items=(PYTHON, element)),))
    if method in ("get", "pop", "setdefault", "popleft"):
        return element
    return None


def spread_elements(facts: list[Fact]) -> list[Fact]:
    """The inputs of `torch.cat([a, b])`/`torch.stack(rows)`: a list or tuple stands for its elements."""
    return [item for fact in facts
            for item in (fact.items if fact.value_kind in ("tuple", "list") and fact.items else (fact,))]


def nn_module(fact: Fact) -> bool:
    """An `nn.Module` object: an instance of a `torch.nn` class (`nn.Linear(...)`, a value declared
    `nn.Module`), or a value taken for a module by its name (`self.model`), whose class is unknown."""
    if fact.value_kind == "nn-module":
        return True
    return fact.value_kind == "object" and bool(fact.refs) and all(r.startswith("torch.nn.") for r in fact.refs)


# `torch.nn` containers whose elements (iterated, indexed, sliced) are modules.
_MODULE_SEQUENCES = frozenset({"torch.nn.ModuleList", "torch.nn.Sequential"})


def module_in(container: Fact, sliced: bool = False) -> Fact | None:
    """An element of a `ModuleList`/`Sequential` (`for layer in self.layers`, `self.layers[i]`): a module
    of a class not known here; a slice of one is the container again. None for any other value."""
    if container.value_kind != "object" or not container.refs or not container.refs <= _MODULE_SEQUENCES:
        return None
    return container if sliced else NN_MODULE


def module_output(module: Fact, inputs: "Iterable[Fact]", code: str, method: str | None = None) -> Fact:
    """What calling a module returns (`self.proj(x)`, or its `method`), from its first argument
    (positional, else by keyword): a tensor where that input is. A module's parameters must be where
    its input is, or the call raises, so its output is there too. For a `torch.nn` layer this is
    proven. For a module of a class not known here (`self.model` loaded at run time, a value declared
    `nn.Module`) it is a convention, and only a GPU input says anything: such a module may move a host
    input to its own device first (as Hugging Face models do), or return a tuple or an output
    object. `code` spells the call."""
    if not nn_module(module):
        return UNKNOWN
    first = next(iter(inputs), UNKNOWN)
    if first.device is Device.UNKNOWN or first.device is Device.NOT_TENSOR:
        # Nothing known of where the input is (`model(**batch)`): where the module was placed, if anywhere.
        placed = placed_output(module, code, method)
        if placed is not None:
            return placed
    if not (first.is_tensor or first.is_unknown_tensor):
        return UNKNOWN
    if module.value_kind == "object" and "torch.nn.Module" not in module.refs and method in (None, "forward"):
        name = min(module.refs).rsplit(".", 1)[-1]
        return Fact(first.device, tensor_like=first.tensor_like, pinning_unknown=first.pinning_unknown,
                    dtype=first.dtype, convention=first.by_convention, via=first,
                    reason=f"{code} runs a `{name}` module, whose output is where its input is")
    if first.is_cpu:
        return UNKNOWN
    what = "a module" if method in (None, "forward") else f"`.{method}()` of a module"
    return Fact(first.device, tensor_like=first.tensor_like, convention=True, via=first,
                reason=f"{code} runs {what} of a class not known here, taken to return a tensor where its input is")


def placed_module(module: Fact, device: Device, reason: str, convention: bool = False,
                  origin: "cst.CSTNode | None" = None) -> Fact:
    """A module moved to `device` (`model.cuda()`, `model.to(device)`) or built there (inside `with
    torch.device(d):`, `from_pretrained(..., device_map="cuda")`): its parameters are there, so what it
    computes is too (`placed_output`). The placement rides on the module's fact as its `device_value`."""
    return replace(module, device_value=device, reason=reason, convention=convention, origin=origin, where=None,
                   via=None, subject=None)


def module_placement(module: Fact) -> Device | None:
    """Where a module was moved or built (`placed_module`); None when nothing placed it."""
    if module.value_kind not in ("nn-module", "object") or module.device_value not in (Device.GPU, Device.CPU):
        return None
    return module.device_value


# What calling a module, or these methods of it, computes from its parameters: a tensor on their device.
PLACED_OUTPUT_METHODS = frozenset({"forward", "generate"})


def placed_output(module: Fact, code: str, method: str | None = None) -> Fact | None:
    """What a module placed on the GPU returns when what it is given says nothing (`model(**batch)` of
    a model moved with `.cuda()`): its weights are on the GPU, so its output is there too, or the call
    would fail. A convention: the module may return a tuple or an output object (`out.loss`), which
    holds the tensors. None for a module not placed on the GPU, or for another method
    (`model.parameters()`, `model.num_parameters()`)."""
    if module_placement(module) is not Device.GPU or method not in (None, *PLACED_OUTPUT_METHODS):
        return None
    what = "a module" if method in (None, "forward") else f"`.{method}()` of a module"
    return Fact(Device.GPU, tensor_like=True, convention=True, via=module,
                reason=f"{code} runs {what} placed on the GPU, taken to return tensors on its device")


def prepared_by_launcher(given: Fact, name: str | None, code: str, origin: "cst.CSTNode | None" = None,
                         loaders: bool = False) -> Fact:
    """What a launcher's `prepare`/`setup` returns for one thing it is given (`preparing_method`): a module
    placed on the accelerator, a data loader whose batches are tensors there (or containers of them), and
    anything else as it was. A convention: the launcher places them on the run's device, an accelerator in
    a training run on one. `name` is how the argument is spelled (`train_dataloader`); `loaders`: the method
    takes only data loaders (`setup_dataloaders`)."""
    why = f"{code} places it on the training device, an accelerator by convention"
    spelled = (name or "").rsplit(".", 1)[-1].lower()
    named_a_module = spelled in MODULE_NAMES and given.value_kind in (None, "object")
    if not loaders and (nn_module(given) or named_a_module):
        return placed_module(given if given.value_kind is not None else NN_MODULE, Device.GPU, why, convention=True,
                             origin=origin)
    if loaders or "loader" in spelled or any("DataLoader" in r for r in given.refs):
        batch = Fact(Device.GPU, tensor_like=True, convention=True, origin=origin,
                     reason=f"a batch of a data loader that {code} prepared, on the training device by convention")
        return Fact(Device.NOT_TENSOR, value_kind="list", items=(batch,), reason=why, origin=origin)
    return given


def hooked_batch(hook: str, name: str) -> Fact:
    """The batch parameter `name` of a `LightningModule`'s step hook `hook` (`training_step`): Lightning
    moves each batch to the module's device first, an accelerator by convention."""
    return Fact(Device.GPU, tensor_like=True, convention=True, subject=name,
                reason=f"the batch Lightning moves to the module's device before `{hook}`, an accelerator by "
                       "convention")


# `x.device` of a value whose device is not known: an accelerator by convention, never as proof (the
# checked file's `_device_attribute` and the index read it alike).
UNKNOWN_VALUE_DEVICE = "the device of a value whose device is not known, taken for an accelerator"


def loader_batches(host: Fact, made_by: str, origin: "cst.CSTNode | None" = None) -> Fact:
    """What a `torch.utils.data.DataLoader` is to iterate over: a list whose element is its batch, a
    tensor (or a container of tensors) in host memory, pinned where `host` is (`pin_memory=True`). A
    convention: the default collate stacks what the dataset returns, and a dataset that returns CUDA
    tensors (which its worker processes cannot make) would break it."""
    memory = "pinned host memory" if host.device is Device.PINNED else "host memory"
    batch = replace(host, tensor_like=True, convention=True, origin=origin,
                    reason=f"a batch of {made_by}, whose collate stacks the samples in {memory}, by convention")
    return Fact(Device.NOT_TENSOR, value_kind="list", items=(batch,), refs=frozenset({"torch.utils.data.DataLoader"}),
                reason=f"created by {made_by}", origin=origin)


def placed_by_library(given: Fact, code: str) -> Fact:
    """What a library method that moves its argument to the training device returns (`PLACING_METHODS`):
    a tensor given, on the accelerator; anything else (a batch dict, a processor's output), a dict whose
    tensors are there. A convention: the device is the run's (`args.device`), an accelerator in a
    training run on one."""
    why = f"{code} moves what it is given to the training device, an accelerator by convention"
    moved = Fact(Device.GPU, tensor_like=True, convention=True, reason=why, via=given if given.is_tensor else None)
    if given.is_tensor or given.is_unknown_tensor:
        return replace(moved, ndim=given.ndim, dtype=given.dtype)
    return Fact(Device.NOT_TENSOR, value_kind="dict", items=((None, moved),), convention=True, reason=why)


def loss_output(name: str, inputs: "Iterable[Fact]", code: str) -> Fact | None:
    """What a loss function nobody here knows returns (`self._loss_fn(logits, labels)`, named as
    `LOSS_CALLEES` are): the loss, a 0-d tensor on the device of its first GPU input. A convention:
    the name says it is a loss, and a loss is computed where its inputs are. None for another name,
    or where no input is on the GPU."""
    if name.lstrip("_") not in LOSS_CALLEES:
        return None
    first = next((fact for fact in inputs if fact.is_gpu), None)
    if first is None:
        return None
    return Fact(Device.GPU, tensor_like=True, convention=True, ndim=0, dtype="float", via=first,
                reason=f"{code} calls a loss function (so named) on a GPU tensor, taken to return the loss there")


def gradient_norm(parameters: Fact | None, code: str) -> Fact:
    """What `clip_grad_norm_(parameters, max_norm)` returns (`GRADIENT_NORM_FUNCTIONS`): the total norm, a 0-d
    float tensor on the gradients' device. That is where `parameters` are when a module moved with
    `.cuda()` gives them (`model.parameters()`); otherwise the accelerator, by convention: a training
    step clips the gradients of a model on one, and reading the norm back (`.item()`, a log line) waits
    for the whole backward."""
    placement = module_placement(parameters) if parameters is not None else None
    if placement is None and parameters is not None and parameters.is_tensor:
        placement = Device.CPU if parameters.is_cpu else Device.GPU
    if placement is not None:
        where = "the CPU" if placement is Device.CPU else "the GPU"
        return Fact(placement, tensor_like=True, ndim=0, dtype="float", convention=parameters.by_convention,
                    via=parameters, reason=f"the gradient norm {code} returns, on {where} with the parameters")
    return Fact(Device.GPU, tensor_like=True, ndim=0, dtype="float", convention=True,
                reason=f"the gradient norm {code} returns, on the device of the gradients, which a training "
                       "step keeps on the accelerator, by convention")


def backpropagated(code: str, origin: "cst.CSTNode | None" = None) -> Fact:
    """A value the function runs backward on (`analysis/losses.py`) that nothing else places: a loss, a
    tensor with an autograd graph from a model's forward, which a training step runs on the accelerator,
    by convention."""
    return Fact(Device.GPU, tensor_like=True, convention=True, origin=origin,
                reason=f"backpropagated by {code}, so a loss, which a training step computes on the accelerator "
                       "by convention")


# The mark of an object whose own method moved its tensors in place (`moved_object`).
MOVED_IN_PLACE = "moved-in-place"


def moved_object(owner: Fact, reason: str, origin: "cst.CSTNode | None" = None) -> Fact:
    """An object after a statement `experience.to_device(torch.cuda.current_device())`: a method of that
    name moves the object's tensors in place (the result is dropped, so the call must), as the `Experience`
    of OpenRLHF and SkyRL does; its fields are then on the GPU (`moved_field`). A convention: the method's
    name says what it does."""
    base = owner if owner.value_kind == "object" else Fact(Device.NOT_TENSOR, value_kind="object")
    return replace(base, device_value=Device.GPU, convention=True, reason=reason, origin=origin, where=None, via=None,
                   subject=None, items=(*base.items, MOVED_IN_PLACE))


# Fields named as a count or a size (`num_actions`, `max_len`), which such an object keeps as Python ints.
_SIZE_PREFIXES = ("num_", "n_", "max_", "min_", "total_")
_SIZE_SUFFIXES = ("_size", "_count", "_len", "_length", "_dim")


def moved_field(owner: Fact, subject: str) -> Fact | None:
    """A field of an object moved to the GPU in place (`moved_object`): a tensor there, by convention; None
    for any other owner, or for a field named as a count or a size (SkyRL's `experience.num_actions` is an
    `int`)."""
    if owner.value_kind != "object" or MOVED_IN_PLACE not in owner.items or owner.device_value is not Device.GPU:
        return None
    field = subject.rsplit(".", 1)[-1]
    if field.startswith(_SIZE_PREFIXES) or field.endswith(_SIZE_SUFFIXES):
        return None
    return Fact(Device.GPU, tensor_like=True, convention=True, subject=subject, via=owner,
                reason="a field of an object moved to the GPU in place, taken for a tensor there")


def is_exact(fact: Fact) -> bool:
    """Whether an object's class is known exactly (constructed, not declared)."""
    return fact.value_kind == "object" and "exact" in fact.items


def join(a: Fact | None, b: Fact | None) -> Fact:
    """The conservative merge of two control-flow paths."""
    if a is None:
        return b if b is not None else UNKNOWN
    if b is None or a == b:
        return a
    # `x = None` on one path: wherever `x` is then used as a tensor, it holds the other path's value.
    if a.value_kind == "none":
        return b
    if b.value_kind == "none":
        return a
    if a.value_kind == b.value_kind and a.value_kind in ("list", "dict") and (a.empty or b.empty):
        return b if a.empty else a
    if a.value_kind == "dict" and b.value_kind == "dict" and a.items != b.items:
        return _joined_dicts(a, b)
    if a.dtype == "str" and b.dtype == "str" and string_text(a) != string_text(b):
        return _joined_strings(a, b)
    if a.value_kind == b.value_kind and a.value_kind in ("nn-module", "object") and a.device_value != b.device_value:
        # A module placed on one path only (`if use_gpu: model.cuda()`): the module, placed nowhere known.
        return join(replace(a, device_value=None), replace(b, device_value=None))
    if a.device is b.device and a.value_kind == b.value_kind and a.device_value == b.device_value:
        if a.value_kind == "object" and (a.refs != b.refs or a.items != b.items):
            # Either class on the way here; exact only when both paths built it.
            return replace(a, refs=a.refs | b.refs, items=a.items if a.items == b.items else ())
        if a.value_kind in ("tuple", "list") and a.items != b.items:
            # Element by element where both paths built the same shape; else elements unknown.
            same = len(a.items) == len(b.items) and all(isinstance(i, Fact) for i in (*a.items, *b.items))
            return replace(a, items=tuple(join(x, y) for x, y in zip(a.items, b.items)) if same else ())
        return replace(
            a,
            ndim=a.ndim if a.ndim == b.ndim else None,
            dtype=a.dtype if a.dtype == b.dtype else None,
            pinning_unknown=a.pinning_unknown or b.pinning_unknown,
        )
    host = _host_join(a, b) or _host_join(b, a)
    if host is not None:
        return host
    cut = _pieces_or_whole(a, b) or _pieces_or_whole(b, a)
    if cut is not None:
        return cut
    mixed = _mixed_device(a, b)
    if mixed is not None:
        return mixed
    one_path = _gpu_on_one_path(a, b) or _gpu_on_one_path(b, a)
    if one_path is not None:
        return one_path
    tensorish = a.is_tensor or b.is_tensor or a.tensor_like or b.tensor_like
    return Fact(Device.UNKNOWN, tensor_like=tensorish)


# What the reason of a device that is the CPU on some paths (`_mixed_device`) ends with.
ON_ANOTHER_PATH = "or the CPU on another path"


def _joined_dicts(a: Fact, b: Fact) -> Fact:
    """Two dicts this code built, after paths that stored different entries: each key holds what
    either path stored under it (reading a key one path never stored fails there)."""
    first: dict[str | None, Fact] = dict(a.items)
    second: dict[str | None, Fact] = dict(b.items)
    entries: dict[str | None, Fact] = {}
    for key in (*first, *(k for k in second if k not in first)):
        # A key one path stored only under a key known at run time may hold that entry there.
        ours, theirs = first.get(key, first.get(None)), second.get(key, second.get(None))
        entries[key] = join(ours, theirs) if ours is not None and theirs is not None else ours or theirs
    return replace(a, items=tuple(entries.items()))


def _joined_strings(a: Fact, b: Fact) -> Fact:
    """Two strings of different text: a string of unknown text (devices are `_mixed_device`'s)."""
    return _mixed_device(a, b) or Fact(Device.NOT_TENSOR, value_kind="python", dtype="str")


def _device_side(fact: Fact) -> str | None:
    """"cpu" or "accelerator" for a device value or a string naming a device; None otherwise."""
    if fact.value_kind == "device":
        if fact.device_value is Device.GPU:
            return "accelerator"
        return "cpu" if fact.device_value in (Device.CPU, Device.PINNED) else None
    text = string_text(fact)
    device = string_device(text) if text is not None else None
    return None if device is None else "cpu" if device is Device.CPU else "accelerator"


def _mixed_device(a: Fact, b: Fact) -> Fact | None:
    """The accelerator on one path and the CPU on the other (`device = "cpu"`, then `if use_nccl:
    device = group.device`): a tensor made there is on the accelerator only on some paths, so only by
    convention, as the project index joins such a device's sources. None when that is not the case."""
    sides = {_device_side(a): a, _device_side(b): b}
    if set(sides) != {"cpu", "accelerator"}:
        return None
    accelerator = sides["accelerator"]
    text = string_text(accelerator)
    # A reason that quotes code at its origin (`{code}`) is rendered only with that code at hand.
    said = f"device string {text!r}" if text is not None else \
        accelerator.reason if accelerator.reason and "{code}" not in accelerator.reason else "an accelerator"
    return replace(device_value(Device.GPU, f"{said}, {ON_ANOTHER_PATH}", accelerator.origin), convention=True)


def _host_join(tensor: Fact, other: Fact) -> Fact | None:
    """A host tensor on one path and a Python or NumPy value on the other (`skip = False`, then
    `skip = torch.rand([]) < p` in training): neither is in GPU memory, so the join is the host
    tensor, whose reads wait for nothing. None when that is not the case."""
    if not tensor.is_cpu or other.device is not Device.NOT_TENSOR or other.value_kind not in ("python", "numpy"):
        return None
    return replace(tensor, ndim=None, dtype=tensor.dtype if tensor.dtype == other.dtype else None)


def _pieces_or_whole(pieces: Fact, tensor: Fact) -> Fact | None:
    """A tensor on one path and the pieces of one on its device on the other (`if isinstance(lens,
    torch.Tensor): lens = lens.unbind(0)`): the tensor, as the pieces were before they were told apart,
    since what reads either (`torch.hstack(lens)`) reads memory on that device. None otherwise."""
    if pieces.value_kind != "list" or len(pieces.items) != 1 or not isinstance(pieces.items[0], Fact) \
            or not any(step.reason.startswith(PIECES) for step in pieces.chain):
        return None  # a list display (`[audio]` where `audio` may already be a list) says nothing of the kind
    piece = pieces.items[0]
    if not tensor.is_tensor or piece.device is not tensor.device:
        return None
    return replace(tensor, ndim=None, dtype=tensor.dtype if tensor.dtype == piece.dtype else None)


def _gpu_on_one_path(gpu: Fact, host: Fact) -> Fact | None:
    """A GPU tensor on one path and a Python number on the other (`start, end = 0, n`, or in DP
    attention `start, end = gpu_start, gpu_start + gpu_count`): reading it on the host waits for the
    GPU on the first path, so it is the GPU tensor, only by convention (which path runs is not known).
    None otherwise, and for a host tensor: a caller's tensor beside a fallback computed on the device
    is mostly on the CPU (vLLM's multimodal inputs kept there, `if counts is None: counts =
    x.new_tensor(...)`); and for a value the other path read back from a tensor (`if isinstance(ids,
    torch.Tensor): ids = ids.tolist()`), where the path that skipped it held no tensor at all."""
    if not gpu.is_gpu or gpu.value_kind is not None:
        return None
    if host.device is not Device.NOT_TENSOR or host.value_kind != "python" or host.dtype == "str" or \
            _read_back(host.origin):
        return None
    return replace(gpu, convention=True, ndim=None, via=gpu,
                   reason=f"on the GPU on one path, {ON_ANOTHER_PATH}")


def _read_back(origin: "cst.CSTNode | None") -> bool:
    """`t.tolist()`, `t.item()`, `t.numpy()`: a host value read from a tensor."""
    from libcst import Attribute, Call

    return isinstance(origin, Call) and isinstance(origin.func, Attribute) and \
        origin.func.attr.value in ("tolist", "item", "numpy")


def _read_from_container(origin: "cst.CSTNode | None") -> bool:
    """`d.get(k)`, `d.pop(k)`, `d.setdefault(k, v)`, `d[k]`: a value read out of a mapping or sequence."""
    from libcst import Attribute, Call, Subscript

    return isinstance(origin, Subscript) or (isinstance(origin, Call) and isinstance(origin.func, Attribute)
                                             and origin.func.attr.value in ("get", "pop", "setdefault"))


def none_fallback(when_none: Fact | None, given: Fact | None) -> Fact | None:
    """The join of `x` after `if x is None: x = <GPU tensor>` (or `x if x is not None else <GPU
    tensor>`) where the value given otherwise is a host number: the GPU tensor, or None when the
    rule does not apply. The code computes on the device what the caller did not pass, so the value
    is on the GPU on every pass that reads it unprovided: a sync in the arm itself would be reported,
    and the same sync after the join is the same wait. So too where the value given otherwise was read
    out of a container nothing knows (`x = state.get("avg")`, then `if x is None: x = <GPU>` and often
    `state["avg"] = x`): a get-or-create cache holds what an earlier pass made there (OLMo's clipping)."""
    if when_none is None or given is None or not when_none.is_gpu:
        return None
    if given.device is Device.UNKNOWN and not given.tensor_like and given.value_kind is None \
            and _read_from_container(given.origin):
        return when_none
    if given.device is not Device.NOT_TENSOR or given.value_kind not in ("python", "none"):
        return None
    return when_none


_DEVICE_WORDS = {
    Device.GPU: "on the GPU",
    Device.CPU: "on the CPU",
    Device.PINNED: "in pinned CPU memory",
    Device.NOT_TENSOR: "not a tensor",
    Device.UNKNOWN: "of unknown device",
}


def explain(
    fact: Fact,
    line_of: Callable[[cst.CSTNode], int],
    code_of: Callable[[cst.CSTNode], str],
    depth: int = 2,
) -> str:
    """Render a fact's provenance as one sentence: `depth` links in this file, and the
    steps through other files (each with its `path:line`) after them, up to eight in all."""
    return "; ".join(text for text, _where, _line in explain_steps(fact, line_of, code_of, depth) if text)


def explain_steps(
    fact: Fact,
    line_of: Callable[[cst.CSTNode], int],
    code_of: Callable[[cst.CSTNode], str],
    depth: int = 2,
) -> list[tuple[str, str | None, int | None]]:
    """The steps `explain` renders, each as (text, "path:line" in another file or None, line in this file
    or None): the first `depth`, then those in other files, and the step back in this file that follows
    one (the argument a call into another module returns: `helper(b)`, then why `b` is on the GPU)."""
    steps: list[tuple[str, str | None, int | None]] = []
    current: Fact | None = fact
    elsewhere = False  # the step before was in another file
    while current is not None and len(steps) < 8 and (len(steps) < depth or current.where is not None
                                                       or (elsewhere and current.origin is not None)):
        line = line_of(current.origin) if current.origin is not None else None
        step = (_explain_one(current, line_of, code_of), current.where if line is None else None, line)
        if not steps or steps[-1] != step:  # a field stored from itself (`self.x = max(self.x, y)`) says it once
            steps.append(step)
        elsewhere = line is None and current.where is not None
        current = current.via
    chain = fact.chain
    if fact.by_convention and len(chain) > len(steps):
        # The step a convention enters at (`model(**batch)` of a model `accelerator.prepare` placed): what
        # makes the evidence a convention is worth its line, when the steps shown stop before it.
        taken = next((f for f in reversed(chain) if f.convention or f.from_name), None)
        if taken is not None and chain.index(taken) >= len(steps) and \
                (taken.origin is not None or taken.where is not None):
            line = line_of(taken.origin) if taken.origin is not None else None
            steps.append((_explain_one(taken, line_of, code_of), taken.where if line is None else None, line))
    return steps


_HANDLE_WORDS = {"event": "a torch event", "stream": "a torch stream", "device-module": "a device module"}
# The values a wait is made on: torch events and streams, and device modules (`torch.cuda`).
HANDLE_KINDS = frozenset(_HANDLE_WORDS)
_DEVICE_VALUE_WORDS = {Device.GPU: "an accelerator device", Device.CPU: "the CPU device",
                       Device.PINNED: "the CPU device", Device.UNKNOWN: "a device",
                       Device.NOT_TENSOR: "a device"}


def _explain_one(fact: Fact, line_of: Callable[[cst.CSTNode], int], code_of: Callable[[cst.CSTNode], str]) -> str:
    words = _DEVICE_WORDS[fact.device]
    placement = module_placement(fact)
    if placement is not None:
        words = "a module on the GPU" if placement is Device.GPU else "a module on the CPU"
    if fact.device is Device.UNKNOWN and fact.tensor_like:
        words = "a tensor of unknown device"
    if fact.value_kind == "device" and fact.device_value is not None:
        words = _DEVICE_VALUE_WORDS[fact.device_value]
    words = _HANDLE_WORDS.get(fact.value_kind or "", words)
    if fact.value_kind == "tensor-type":
        maker = "a maker of GPU tensors from data" if "data" in fact.items else "a GPU tensor type"
        words = maker if fact.device_value is Device.GPU else "a tensor type"
    if fact.subject is None and fact.where is not None and fact.reason:  # a step in another place
        return f"{fact.reason} ({fact.where})"
    subject = f"`{fact.subject}`" if fact.subject else "the value"
    reason = fact.reason
    if fact.origin is not None and "{code}" in reason:
        reason = reason.replace("{code}", f"`{abbreviate(code_of(fact.origin))}`")
    where = f" at line {line_of(fact.origin)}" if fact.origin is not None else (f" ({fact.where})" if fact.where else "")
    if not reason:
        return f"{subject} is {words}"
    return f"{subject} is {words}: {reason}{where}"


def abbreviate(code: str, limit: int = 60) -> str:
    """Shorten source for a message, keeping the `device=` argument visible."""
    code = " ".join(code.split())
    if len(code) <= limit:
        return code
    paren = code.find("(")
    if paren > 0 and code.endswith(")"):
        head = code[:paren]
        dev = code.find("device=")
        if dev > 0:
            tail = code[dev:-1]
            depth, end = 0, len(tail)
            for i, ch in enumerate(tail):
                if ch in "([{":
                    depth += 1
                elif ch in ")]}":
                    depth -= 1
                elif ch == "," and depth == 0:
                    end = i
                    break
            return f"{head}(..., {tail[:end]})"
        return f"{head}(...)"
    return code[: limit - 3] + "..."


def moved_like(owner: Fact, other: Fact, reason: str, origin: "cst.CSTNode | None" = None) -> Fact:
    """`owner.type_as(other)`, which is `owner.to(other)`: the other tensor's device and dtype. Where the
    other is not known, a CPU `owner` is taken to move to an accelerator by convention only, as
    `.to(x.device)` of an `x` not known is (VideoMAE's CPU sinusoid table `type_as` its GPU input)."""
    if other.is_tensor:
        return Fact(Device.CPU if other.device is Device.PINNED else other.device, ndim=owner.ndim,
                    dtype=other.dtype, reason=reason, origin=origin, convention=other.by_convention)
    if owner.is_cpu:
        return Fact(Device.GPU, ndim=owner.ndim, reason=reason, origin=origin, convention=True)
    return replace(owner, dtype=None, tensor_like=True)


def library_fields(given: Iterable[tuple[str, Fact]]) -> tuple:
    """The items of an object of a library class built with these keyword arguments (name, fact; at
    most `MAX_LIBRARY_FIELDS` of them read): the tensors of known device, as the fields of those names
    (Megatron's `PackedSeqParams(cu_seqlens_q=cu, ...)`, a dataclass); empty when there is none."""
    fields = tuple(("field", name, fact) for _, (name, fact) in zip(range(MAX_LIBRARY_FIELDS), given)
                   if fact.is_tensor)
    return (LIBRARY_FIELDS, *fields) if fields else ()

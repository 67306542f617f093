"""Device inference, queried directly: the facts and the evidence behind them.

Each case lints a snippet whose last line is `probe(<expr>)`; a probe rule records
the fact device inference holds for `<expr>` at that point of the program.
"""

from __future__ import annotations

import textwrap

import libcst as cst
import pytest

from sync_lint.analysis.facts import Device, Fact
from sync_lint.config import Settings
from sync_lint.engine import lint_source
from sync_lint.rulekit import Rule

SEEN: list[tuple[Fact, str]] = []


class Probe(Rule):
    code = "XPR001"
    name = "probe"
    summary = "records facts"
    triggers = ("probe(",)

    def visit_Call(self, node: cst.Call) -> None:
        if isinstance(node.func, cst.Name) and node.func.value == "probe":
            expr = node.args[0].value
            fact = self.ctx.devices.fact(expr)
            from sync_lint.analysis.facts import explain

            SEEN.append((fact, explain(fact, self.ctx.line_of, self.ctx.code)))


def fact_of(source: str, **settings: object) -> tuple[Fact, str]:
    SEEN.clear()
    result = lint_source(textwrap.dedent(source), "probe.py", [Probe], Settings().override(**settings))
    assert not result.errors
    assert len(SEEN) == 1, "the snippet must call probe() once"
    return SEEN[0]


@pytest.mark.parametrize(
    "source,device",
    [
        ("import torch\nx = torch.zeros(3, device='cuda')\nprobe(x)", Device.GPU),
        ("import torch\nx = torch.zeros(3, device=torch.device('cpu'))\nprobe(x)", Device.CPU),
        ("import torch\nd = str(torch.device('cpu'))\nprobe(torch.zeros(3, device=d))", Device.CPU),
        ("import torch\nx = torch.zeros(3)\nprobe(x)", Device.CPU),
        ("import torch\ndef f(device):\n    x = torch.ones(2, device=device)\n    probe(x)", Device.GPU),
        ("import torch\nx = torch.zeros(3).cuda()\nprobe(x + 1)", Device.GPU),
        ("import torch\nx = torch.zeros(3, device='cuda').cpu()\nprobe(x)", Device.CPU),
        ("import torch\nx = torch.zeros(3).pin_memory()\nprobe(x)", Device.PINNED),
        ("import torch\nx = torch.zeros(3, device='cuda')\nprobe(x.to(torch.float16))", Device.GPU),
        ("import torch\nx = torch.zeros(3, device='cuda')\nprobe(x.numpy())", Device.NOT_TENSOR),
        ("import numpy as np\na = np.ones(3)\nprobe(a.sum())", Device.NOT_TENSOR),
        ("import torch\nx = torch.from_numpy(a)\nprobe(x)", Device.CPU),
        ("import torch\ny = torch.zeros(2, device='cuda')\nx = torch.empty_like(y)\nprobe(x)", Device.GPU),
        ("import torch\ny = torch.zeros(2, device='cuda')\nprobe(y.new_zeros(4))", Device.GPU),
        ("import torch as th\nx = th.arange(4, device='cuda')\nprobe(th.cumsum(x, 0))", Device.GPU),
        ("import torch\nx = torch.zeros(3, device='cuda')\na, b = x.chunk(2)\nprobe(b)", Device.GPU),
        ("import torch\nxs = torch.zeros(3, 2, device='cuda')\nfor row in xs:\n    probe(row)", Device.GPU),
        ("import torch\nmodel = torch.nn.Linear(2, 2)\nprobe(model.to('cuda'))", Device.NOT_TENSOR),
        ("def f(lens_cpu):\n    probe(lens_cpu)", Device.CPU),
        ("def f(lens_gpu):\n    probe(lens_gpu)", Device.GPU),
        ("def f(x):\n    probe(x)", Device.UNKNOWN),
        # `triton.cdiv(x, d)` is `(x + d - 1) // d`: a tensor where `x` is, also through a re-exported `triton`.
        ("import torch, triton\nx = torch.arange(4, device='cuda')\nprobe(triton.cdiv(x, 8))", Device.GPU),
        ("import torch\nfrom pkg.utils import triton\nx = torch.arange(4)\nprobe(triton.cdiv(x, 8))", Device.CPU),
        ("import triton\nprobe(triton.cdiv(7, 8))", Device.NOT_TENSOR),
        # A symmetric-memory buffer is placed as `torch.empty(..., device=...)` places it.
        ("import torch.distributed._symmetric_memory as symm_mem\nprobe(symm_mem.empty(8, device='cuda'))",
         Device.GPU),
        ("import torch.distributed._symmetric_memory as symm_mem\ndef f(device):\n    probe(symm_mem.empty(8, "
         "device=device))", Device.GPU),
        ("from torch.distributed import _symmetric_memory as sm\nprobe(sm.empty(8, device='cpu'))", Device.CPU),
    ],
)
def test_fact_device(source: str, device: Device) -> None:
    assert fact_of(source)[0].device is device


@pytest.mark.parametrize(
    "source,device",
    [
        # A display of tensors keeps them: unpacked, iterated, indexed.
        ("import torch\nt = (None, torch.zeros(4, device='cuda'))\n_, m = t\nprobe(m)", Device.GPU),
        ("import torch\nvals = [torch.ones(3, device='cuda')]\nfor v in vals:\n    probe(v)", Device.GPU),
        ("import torch\nx = torch.ones(3, device='cuda')\npair = (x, x.cpu())\nprobe(pair[1])", Device.CPU),
        ("import torch\nx = torch.ones(3, device='cuda')\npair = (x, x.cpu())\nprobe(pair[0])", Device.GPU),
        # Elements on different devices: an element of the list is of unknown device.
        ("import torch\nx = torch.ones(3, device='cuda')\nfor v in [x, x.cpu()]:\n    probe(v)", Device.UNKNOWN),
        # `torch.cat`/`torch.stack` of a display or a comprehension: where the elements are.
        ("import torch\ng = torch.zeros(4, device='cuda')\nprobe(torch.cat([g, g + 1]))", Device.GPU),
        ("import torch\ng = torch.zeros(4, device='cuda')\nrows = [g[i] for i in range(3)]\nprobe(torch.stack(rows))",
         Device.GPU),
        ("import torch\ndef f(xs):\n    parts = [torch.arange(k) for k in xs]\n    probe(torch.cat(parts))", Device.CPU),
        # A list this function fills with `.append`/`.extend`/`.insert`, read after a loop that may not run.
        ("import torch\ndef f(ids):\n    g = torch.zeros(4, 8, device='cuda')\n    vals = []\n"
         "    for i in ids:\n        vals.append(g[i])\n    probe(torch.cat(vals))", Device.GPU),
        ("import torch\ndef f(ids):\n    g = torch.zeros(4, 8, device='cuda')\n    vals = []\n"
         "    vals.extend([g, g])\n    for v in vals:\n        probe(v)", Device.GPU),
        ("import torch\ndef f(ids):\n    g = torch.zeros(4, 8, device='cuda')\n    vals = []\n"
         "    for i in ids:\n        vals += [g[i]]\n    probe(torch.cat(vals))", Device.GPU),
        ("import torch\ndef f(ids):\n    vals = []\n    for i in ids:\n        vals.insert(0, torch.arange(i))\n"
         "    probe(torch.cat(vals))", Device.CPU),
        # Elements on two devices: unknown; a list nothing was added to: no tensor.
        ("import torch\ndef f(ids):\n    g = torch.zeros(4, device='cuda')\n    vals = []\n"
         "    vals.append(g)\n    vals.append(g.cpu())\n    probe(torch.cat(vals))", Device.UNKNOWN),
        # `*_like(cpu, pin_memory=True)` is new pinned host memory, not where its model is.
        ("import torch\ndef f(n):\n    perm = torch.arange(n)\n    probe(torch.empty_like(perm, pin_memory=True))",
         Device.PINNED),
        # `out=` is what the call returns: a pinned staging buffer stays pinned.
        ("import torch\ndef f(parts, n):\n    buf = torch.empty(n, pin_memory=True)\n"
         "    probe(torch.cat(parts, out=buf))", Device.PINNED),
        # Two paths built tuples of the same shape: element by element.
        ("import torch\ndef f(c):\n    x = torch.ones(3, device='cuda')\n    if c:\n        t = (1, x)\n"
         "    else:\n        t = (2, x.cpu())\n    _, y = t\n    probe(y)", Device.UNKNOWN),
        ("import torch\ndef f(c):\n    x = torch.ones(3, device='cuda')\n    if c:\n        t = (1, x)\n"
         "    else:\n        t = (2, x + 1)\n    _, y = t\n    probe(y)", Device.GPU),
        # An index known only at run time reads one of a tuple's items: their join.
        ("import torch\ndef f(i):\n    x = torch.ones(3, device='cuda')\n    t = (x, x + 1)\n    probe(t[i])",
         Device.GPU),
        ("import torch\ndef f(i):\n    x = torch.ones(3, device='cuda')\n    t = (x, x.cpu())\n    probe(t[i])",
         Device.UNKNOWN),
        ("import torch\ndef f(i):\n    x = torch.ones(3)\n    t = (x, x + 1)\n    probe(t[i])", Device.CPU),
    ],
)
def test_displays_keep_their_tensors(source: str, device: Device) -> None:
    assert fact_of(source)[0].device is device


@pytest.mark.parametrize(
    "source,device",
    [
        # A dict this code builds keeps its tensors: read by key, by `.get`, through `.values()`/`.items()`.
        ("import torch\ndef f(n):\n    d = {'a': torch.zeros(n, device='cuda'), 'b': 1}\n    probe(d['a'])",
         Device.GPU),
        ("import torch\ndef f(n):\n    d = {'a': torch.zeros(n, device='cuda'), 'b': torch.zeros(n)}\n"
         "    probe(d.get('b'))", Device.CPU),
        ("import torch\ndef f(batch):\n    gpu = {k: v.cuda(non_blocking=True) for k, v in batch.items()}\n"
         "    probe(gpu['input_ids'])", Device.GPU),
        ("import torch\ndef f(batch, dev='cuda'):\n    gpu = {k: v.to(dev) for k, v in batch.items()}\n"
         "    for _name, t in gpu.items():\n        probe(t)", Device.GPU),
        ("import torch\ndef f(n):\n    d = {'a': torch.zeros(n, device='cuda')}\n    for t in d.values():\n"
         "        probe(t)", Device.GPU),
        # Stores fill a dict that started empty, also in a loop that may not run.
        ("import torch\ndef f(n):\n    d = {}\n    d['a'] = torch.zeros(n)\n    probe(d['a'])", Device.CPU),
        ("import torch\ndef f(batch):\n    out = {}\n    for k, v in batch.items():\n"
         "        out[k] = v.cuda()\n    probe(out['seq_lens'])", Device.GPU),
        # Paths that stored different tensors under one key: unknown; iterating a dict reads its keys.
        ("import torch\ndef f(n, c):\n    d = {}\n    if c:\n        d['a'] = torch.zeros(n, device='cuda')\n"
         "    else:\n        d['a'] = torch.zeros(n)\n    probe(d['a'])", Device.UNKNOWN),
        ("import torch\ndef f(names):\n    d = {k: torch.zeros(3, device='cuda') for k in names}\n"
         "    for k in d:\n        probe(k)", Device.UNKNOWN),
    ],
)
def test_dicts_keep_their_tensors(source: str, device: Device) -> None:
    fact, _evidence = fact_of(source)
    assert fact.device is device
    assert not fact.by_convention


@pytest.mark.parametrize(
    "loop,device",
    [
        ("for layer in self.layers:\n                h = layer(h)", Device.GPU),
        ("for layer in islice(self.layers, 0, 2):\n                h = layer(h)", Device.GPU),
        ("for i in range(2):\n                h = self.layers[i](h)", Device.GPU),
        ("for layer in self.layers[:2]:\n                h = layer(h)", Device.GPU),
        # A plain list of modules says nothing of its elements' class.
        ("for layer in self.hooks:\n                h = layer(h)", Device.UNKNOWN),
    ],
)
def test_the_modules_of_a_module_list_return_where_their_input_is(loop: str, device: Device) -> None:
    source = f"""
    from itertools import islice
    import torch
    from torch import nn
    class M(nn.Module):
        def __init__(self, hooks):
            self.layers = nn.ModuleList([Block() for _ in range(2)])
            self.hooks = hooks
        def forward(self, n):
            h = torch.zeros(n, 4, device="cuda")
            {loop}
            probe(h)
    """
    assert fact_of(source)[0].device is device


@pytest.mark.parametrize(
    "source,device,convention",
    [
        # A torch.nn layer's output is where its input is: proven.
        ("import torch\nfrom torch import nn\nproj = nn.Linear(4, 4)\n"
         "probe(proj(torch.zeros(2, 4, device='cuda')))", Device.GPU, False),
        # A module of a class not known here (taken for one by its name): a convention.
        ("import torch\ndef f(model, n):\n    ids = torch.zeros(n, device='cuda')\n    probe(model(ids))",
         Device.GPU, True),
        ("import torch\ndef f(model, n):\n    ids = torch.zeros(n, device='cuda')\n"
         "    probe(model(input_ids=ids, positions=None))", Device.GPU, True),
        ("import torch\nclass R:\n    def step(self, n):\n        h = torch.zeros(n, 8, device='cuda')\n"
         "        probe(self.model.compute_logits(h, None))", Device.GPU, True),
        # A host input says nothing: the module may move it to its own device first.
        ("import torch\ndef f(model: torch.nn.Module, n):\n    probe(model(torch.zeros(n)))", Device.UNKNOWN, False),
        ("import torch\ndef f(model, ids, n):\n    probe(model(ids, mask=torch.zeros(n, device='cuda')))",
         Device.UNKNOWN, False),
        # No tensor goes in: nothing is known of what comes out.
        ("import torch\ndef f(model, prompts):\n    probe(model(prompts))", Device.UNKNOWN, False),
        # Moving a module returns the module, not a tensor.
        ("import torch\ndef f(model, n):\n    probe(model.to(torch.zeros(n, device='cuda')))",
         Device.NOT_TENSOR, False),
    ],
)
def test_a_module_returns_a_tensor_where_its_input_is(source: str, device: Device, convention: bool) -> None:
    fact = fact_of(source)[0]
    assert fact.device is device
    assert fact.by_convention is convention


@pytest.mark.parametrize(
    "source,device",
    [
        # accelerate and Lightning Fabric place a model and the batches of data loaders on the device.
        ("from accelerate import Accelerator\ndef f(model, opt, train_loader):\n    accelerator = Accelerator()\n"
         "    model, opt, train_loader = accelerator.prepare(model, opt, train_loader)\n"
         "    for batch in train_loader:\n        probe(batch['labels'])", Device.GPU),
        ("from accelerate import Accelerator\ndef f(model, opt, batch):\n    accelerator = Accelerator()\n"
         "    model, opt = accelerator.prepare(model, opt)\n    probe(model(**batch).loss)", Device.GPU),
        ("def f(fabric, a, b):\n    a, b = fabric.setup_dataloaders(a, b)\n    probe(next(iter(b)))", Device.GPU),
        # An optimizer comes back as it was; another receiver's `prepare` is another method.
        ("from accelerate import Accelerator\ndef f(model, opt):\n    accelerator = Accelerator()\n"
         "    model, opt = accelerator.prepare(model, opt)\n    probe(opt)", Device.UNKNOWN),
        ("def f(processor, loader):\n    loader = processor.prepare(loader)\n    probe(next(iter(loader)))",
         Device.UNKNOWN),
        # Lightning moves a step hook's batch to the module's device.
        ("import lightning as L\nclass M(L.LightningModule):\n    def training_step(self, batch, batch_idx):\n"
         "        x, y = batch\n        probe(y)", Device.GPU),
        ("import lightning as L\nclass M(L.LightningModule):\n    def on_train_start(self, batch):\n"
         "        probe(batch)", Device.UNKNOWN),
        ("class M:\n    def training_step(self, batch, batch_idx):\n        probe(batch)", Device.UNKNOWN),
    ],
)
def test_a_launcher_places_models_and_batches(source: str, device: Device) -> None:
    """accelerate's `prepare`, Fabric's `setup*` and Lightning's step hooks put the model and the batches
    on the training device, an accelerator by convention."""
    fact = fact_of(source)[0]
    assert fact.device is device
    assert fact.by_convention or device is not Device.GPU


@pytest.mark.parametrize(
    "source,device",
    [
        # A module moved to the GPU computes there whatever it is given (`model(**batch)`).
        ("import torch\ndef f(model: torch.nn.Module, batch):\n    model = model.cuda()\n    probe(model(**batch))",
         Device.GPU),
        ("import torch\ndef f(model: torch.nn.Module, batch, device):\n    model.to(device)\n"
         "    probe(model(batch))", Device.GPU),
        ("import torch\ndef f(batch):\n    lin = torch.nn.Linear(4, 4).to('cuda')\n    probe(lin(batch))", Device.GPU),
        # A Hugging Face model loaded onto the GPU, or inside `with torch.device(...)`; its output's fields.
        ("from transformers import AutoModelForCausalLM\ndef f(name, batch):\n"
         "    model = AutoModelForCausalLM.from_pretrained(name, device_map='cuda')\n    probe(model(**batch).loss)",
         Device.GPU),
        ("import torch\nfrom transformers import AutoModelForCausalLM\ndef f(name, batch):\n"
         "    with torch.device('cuda'):\n        model = AutoModelForCausalLM.from_pretrained(name)\n"
         "    probe(model(**batch).logits)", Device.GPU),
        ("from transformers import LlamaForCausalLM\ndef f(name, batch):\n"
         "    model = LlamaForCausalLM.from_pretrained(name).cuda()\n    probe(model.generate(**batch))", Device.GPU),
        # Placed nowhere known, on the CPU, or not a model: nothing is said.
        ("from transformers import AutoModelForCausalLM\ndef f(name, batch):\n"
         "    model = AutoModelForCausalLM.from_pretrained(name)\n    probe(model(**batch).loss)", Device.UNKNOWN),
        ("import torch\ndef f(model: torch.nn.Module, batch):\n    model = model.cpu()\n    probe(model(**batch))",
         Device.UNKNOWN),
        ("import torch\ndef f(model: torch.nn.Module, batch):\n    model.to(torch.bfloat16)\n    probe(model(batch))",
         Device.UNKNOWN),
        ("from transformers import AutoTokenizer\ndef f(name, text):\n"
         "    tok = AutoTokenizer.from_pretrained(name, device_map='cuda')\n    probe(tok(text))", Device.UNKNOWN),
        # Only a module's call and `generate` compute on its weights: `parameters()` is no tensor.
        ("import torch\ndef f(model: torch.nn.Module):\n    model.cuda()\n    probe(model.parameters())",
         Device.UNKNOWN),
        # Moved on one path only: placed nowhere known after the `if`.
        ("import torch\ndef f(model: torch.nn.Module, batch, gpu):\n    if gpu:\n        model = model.cuda()\n"
         "    probe(model(**batch))", Device.UNKNOWN),
    ],
)
def test_a_module_placed_on_the_gpu_returns_tensors_there(source: str, device: Device) -> None:
    """`model.cuda()`, `model.to(device)`, `from_pretrained(..., device_map=...)` and `with
    torch.device(d):` place a module: its output is on its device, by convention (the module may return
    an output object, whose `loss` and `logits` fields are the tensors)."""
    fact = fact_of(source)[0]
    assert fact.device is device
    assert fact.by_convention or device is not Device.GPU


@pytest.mark.parametrize(
    "source,device,convention",
    [
        # The norm is where the gradients are: a module moved to the GPU gives them there, for sure.
        ("import torch\nmodel = torch.nn.Linear(2, 2).cuda()\n"
         "probe(torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0))", Device.GPU, False),
        ("from torch.nn.utils import clip_grad_norm_\nimport torch\nmodel = torch.nn.Linear(2, 2)\n"
         "model.to('cpu')\nprobe(clip_grad_norm_(model.parameters(), 1.0))", Device.CPU, False),
        ("import torch\nw = torch.zeros(2, device='cpu')\nprobe(torch.nn.utils.get_total_norm([w]))",
         Device.CPU, False),
        # Parameters of no known device: a training step's, on the accelerator by convention.
        ("import torch\ndef step(model):\n    probe(torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0))",
         Device.GPU, True),
        ("def step(self, model):\n    probe(self.accelerator.clip_grad_norm_(model.parameters(), 1.0))",
         Device.GPU, True),
        ("def step(model):\n    probe(model.clip_grad_norm_(1.0))", Device.GPU, True),
        # A method of that name on a tensor, or another name, is not the gradient norm.
        ("import torch\nx = torch.zeros(2)\nprobe(x.clip_grad_norm_(1.0))", Device.CPU, False),
        ("def step(self, model):\n    probe(self.accelerator.grad_norm(model))", Device.UNKNOWN, False),
    ],
)
def test_a_gradient_norm_is_on_the_device_of_the_gradients(source: str, device: Device, convention: bool) -> None:
    """`clip_grad_norm_` returns a 0-d tensor where the gradients are: a placed module's, else the
    accelerator by convention (reading it back is a sync in every training loop that logs it)."""
    fact = fact_of(source)[0]
    assert fact.device is device
    assert fact.by_convention is convention
    if device is Device.GPU:
        assert fact.ndim == 0 and fact.dtype == "float"


@pytest.mark.parametrize(
    "source,device",
    [
        # What a training step runs backward on is a loss, on the accelerator by convention.
        ("def step(model, batch, compute):\n    loss = sum(compute(model(batch)).values())\n"
         "    loss.backward()\n    probe(loss)", Device.GPU),
        ("def step(model, batch):\n    loss = model(batch).loss\n    probe(loss)\n    loss.backward()",
         Device.GPU),
        ("def step(self, loss):\n    self.scaler.scale(loss).backward()\n    probe(loss)", Device.GPU),
        ("def step(self, loss, n):\n    (loss / n).backward(retain_graph=True)\n    probe(loss)", Device.GPU),
        ("def step(self, loss):\n    self.accelerator.backward(loss)\n    probe(loss)", Device.GPU),
        ("def step(self, loss):\n    self.manual_backward(loss)\n    probe(loss)", Device.GPU),
        # A loss the code placed, another name, or a backward run by a nested function: as they are.
        ("import torch\ndef step(w):\n    loss = (torch.zeros(2) * w).sum()\n    loss.backward()\n    probe(loss)",
         Device.CPU),
        ("def step(model, batch):\n    out = model(batch)\n    out.loss.backward()\n    probe(out)", Device.UNKNOWN),
        ("def step(model, batch):\n    loss = model(batch)\n    def later():\n        loss.backward()\n"
         "    probe(loss)", Device.UNKNOWN),
    ],
)
def test_a_loss_a_training_step_backpropagates_is_on_the_accelerator_by_convention(source: str,
                                                                                    device: Device) -> None:
    """`loss.backward()` and its wrappers (`scaler.scale(loss)`, `accelerator.backward(loss)`): the loss came
    from a model's forward, which a training step runs on the accelerator, so reading it back (`loss.item()`
    for a log line) waits for the whole forward."""
    fact, evidence = fact_of(source)
    assert fact.device is device
    if device is Device.GPU:
        assert fact.by_convention and "backpropagated by" in evidence


@pytest.mark.parametrize(
    "source,device",
    [
        # `experience.to_device(...)` as a statement moves the object's tensors: its fields are there.
        ("import torch\ndef step(experience):\n    experience.to_device(torch.cuda.current_device())\n"
         "    probe(experience.action_mask)", Device.GPU),
        ("from lib import Batch\ndef step(batch: Batch, device):\n    batch.to_device(device)\n"
         "    probe(batch.sequences)", Device.GPU),
        # Before the move, to the CPU, a count's name, or a result that is kept: nothing is said.
        ("import torch\ndef step(experience):\n    probe(experience.action_mask)\n"
         "    experience.to_device('cuda')", Device.UNKNOWN),
        ("def step(experience):\n    experience.to_device('cpu')\n    probe(experience.action_mask)",
         Device.UNKNOWN),
        ("def step(experience):\n    experience.to_device('cuda')\n    probe(experience.num_actions)",
         Device.UNKNOWN),
        ("def step(experience):\n    moved = experience.to_device('cuda')\n    probe(experience.action_mask)",
         Device.UNKNOWN),
    ],
)
def test_an_object_moved_in_place_holds_its_tensors_there(source: str, device: Device) -> None:
    """A statement `experience.to_device(device)` (OpenRLHF's and SkyRL's `Experience`) moves the object's
    tensors: its fields are on the GPU after it, by convention."""
    fact = fact_of(source)[0]
    assert fact.device is device
    assert fact.by_convention or device is not Device.GPU


@pytest.mark.parametrize(
    "source,device",
    [
        # A loss function built at run time, called on the model's GPU output: the loss is there too.
        ("import torch\nclass R:\n    def __init__(self, cfg):\n        self._loss_fn = build(cfg.loss)\n"
         "    def step(self, n):\n        logits = torch.zeros(n, 8, device='cuda')\n"
         "        probe(self._loss_fn(logits, None))", Device.GPU),
        ("import torch\ndef f(criterion, n):\n    out = torch.zeros(n, device='cuda')\n    probe(criterion(out, out))",
         Device.GPU),
        # Inputs on the host, or no input known: nothing is said.
        ("import torch\ndef f(criterion, n):\n    probe(criterion(torch.zeros(n), None))", Device.UNKNOWN),
        ("import torch\ndef f(criterion, out):\n    probe(criterion(out))", Device.UNKNOWN),
        # Another name says nothing of what the call returns.
        ("import torch\ndef f(score_fn, n):\n    probe(score_fn(torch.zeros(n, device='cuda')))", Device.UNKNOWN),
        # A 0-d loss does not unpack: a call that is unpacked returned something else.
        ("import torch\ndef f(loss_fn, n):\n    loss, metrics = loss_fn(torch.zeros(n, device='cuda'))\n"
         "    probe(metrics)", Device.UNKNOWN),
        # Hugging Face's `Trainer._prepare_inputs` moves a batch's tensors to the training device.
        ("from transformers import Trainer\nclass T(Trainer):\n    def step(self, batch):\n"
         "        inputs = super()._prepare_inputs(batch)\n        probe(inputs['input_ids'])", Device.GPU),
        ("import transformers\nclass T(transformers.Trainer):\n    def step(self, batch):\n"
         "        probe(self._prepare_inputs(batch).get('pixel_values'))", Device.GPU),
        # The subclass's own `_prepare_inputs` is another function; another base says nothing.
        ("from transformers import Trainer\nclass T(Trainer):\n    def _prepare_inputs(self, batch):\n"
         "        return batch\n    def step(self, batch):\n        probe(self._prepare_inputs(batch)['ids'])",
         Device.UNKNOWN),
        ("from mylib import Runner\nclass T(Runner):\n    def step(self, batch):\n"
         "        probe(super()._prepare_inputs(batch)['ids'])", Device.UNKNOWN),
    ],
)
def test_a_training_loops_run_time_values_are_placed_by_convention(source: str, device: Device) -> None:
    """A loss function nobody here knows returns the loss where its input is; a `Trainer`'s prepared
    inputs are on the training device."""
    fact = fact_of(source)[0]
    assert fact.device is device
    assert fact.by_convention or device is not Device.GPU


def test_branches_join_conservatively() -> None:
    source = """
    import torch
    def f(flag):
        if flag:
            x = torch.zeros(3, device="cuda")
        else:
            x = torch.zeros(3)
        probe(x)
    """
    assert fact_of(source)[0].device is Device.UNKNOWN


@pytest.mark.parametrize("other,device", [
    ("n", Device.GPU),  # a Python number on the other path: the GPU tensor, by convention
    ("ids.tolist()", Device.UNKNOWN),  # read back from a tensor: that path held no GPU tensor
])
def test_a_gpu_tensor_joined_with_a_python_number_is_the_gpu_tensor_by_convention(other: str, device: Device) -> None:
    source = f"""
    import torch
    def f(flag, n: int, ids):
        if flag:
            x = torch.zeros(3, device="cuda").sum()
        else:
            x = {other}
        probe(x)
    """
    fact = fact_of(source)[0]
    assert fact.device is device
    assert device is not Device.GPU or (fact.by_convention and "on one path" in fact.reason)


@pytest.mark.parametrize(
    "left,device",
    [
        ("flag is not None", Device.GPU),  # a Python bool: the comparison, or False where the flag is unset
        ("len(ids) > 0", Device.GPU),
        ("lens_gpu", Device.GPU),  # a tensor on both sides: the join
        ("torch.zeros(2)", Device.UNKNOWN),  # a CPU tensor or a GPU one
    ],
)
def test_and_is_its_right_side_where_the_left_is_no_tensor(left: str, device: Device) -> None:
    source = f"""
    import torch
    def f(flag, ids: list[int], lens_gpu):
        x = {left} and (torch.zeros(4, device="cuda").max() <= 8)
        probe(x)
    """
    assert fact_of(source)[0].device is device


@pytest.mark.parametrize(
    "expr,tensor_like,dtype",
    [
        ("ids.long()", True, "int"),
        ("ids.bool()", True, "bool"),
        ("ids.to(torch.int64)", True, "int"),
        ("ids.float()", False, "float"),  # `nn.Module.float()` too
        ("ids.to(torch.float16)", False, "float"),  # a module's `.to(dtype)` too
    ],
)
def test_a_cast_only_a_tensor_has_makes_a_tensor(expr: str, tensor_like: bool, dtype: str | None) -> None:
    fact = fact_of(f"import torch\ndef f(ids):\n    probe({expr})\n")[0]
    assert fact.device is Device.UNKNOWN and fact.tensor_like is tensor_like
    if tensor_like:
        assert fact.dtype == dtype


def test_a_name_bound_to_a_device_string_is_that_device() -> None:
    # `device = "cpu"` then `torch.empty(..., device=device)`: the CPU, not "a device that is not
    # literally the CPU" (SGLang's `_gather_device = "cpu"` buffers).
    fact, _ = fact_of('import torch\ndevice = "cpu"\nprobe(torch.empty(4, device=device))')
    assert fact.device is Device.CPU
    fact, _ = fact_of('import torch\ndevice = "cuda:1"\nprobe(torch.empty(4, device=device))')
    assert fact.device is Device.GPU and not fact.by_convention


@pytest.mark.parametrize("choose", [
    'device = "cpu"\n        if use_nccl:\n            device = "cuda"',
    'device = "cpu"\n        if use_nccl:\n            device = group.device',
    'device = torch.device("cpu") if not use_nccl else torch.device("cuda")',
])
def test_a_device_that_is_the_cpu_on_another_path_is_the_accelerator_by_convention(choose: str) -> None:
    source = f"""
    import torch
    def f(use_nccl, group):
        {choose}
        probe(torch.empty(4, device=device))
    """
    fact, evidence = fact_of(source)
    assert fact.device is Device.GPU
    assert fact.by_convention
    assert "or the CPU on another path" in evidence
    # Strings that name no device stay plain data.
    fact, _ = fact_of('import torch\ndef f(a):\n    s = "x"\n    if a:\n        s = "y"\n    probe(s)')
    assert fact.device is Device.NOT_TENSOR and fact.value_kind != "device"


def test_branches_that_agree_keep_the_fact() -> None:
    source = """
    import torch
    def f(flag, device):
        if flag:
            x = torch.zeros(3, device=device)
        else:
            x = torch.ones(3, device=device)
        probe(x)
    """
    assert fact_of(source)[0].device is Device.GPU


def test_init_attributes_are_known_in_other_methods() -> None:
    source = """
    import torch
    class Builder:
        def __init__(self, n, device):
            self.buf = torch.zeros(n, device=device)
        def build(self):
            probe(self.buf)
    """
    fact, evidence = fact_of(source)
    assert fact.device is Device.GPU
    assert "`self.buf` is on the GPU" in evidence and "line 5" in evidence


def test_evidence_names_the_source_and_line() -> None:
    source = """
    import torch
    def f(device):
        x = torch.randint(0, 10, (8,), device=device)
        y = x * 2
        probe(y)
    """
    fact, evidence = fact_of(source)
    assert fact.device is Device.GPU
    assert evidence.startswith("`y` is on the GPU: assigned from `x * 2` at line 5")
    assert "`x` is on the GPU: assigned from `torch.randint(0, 10, (8,), device=device)` at line 4" in evidence


def test_configured_gpu_attribute_is_not_hidden_by_an_unknown_assignment() -> None:
    # `self.seq_lens = seq_lens` from an unannotated parameter is no evidence; the
    # project's gpu-attributes setting is.
    source = """
    class Batch:
        def __init__(self, seq_lens):
            self.seq_lens = seq_lens
        def total(self):
            probe(self.seq_lens)
    """
    assert fact_of(source)[0].device is Device.UNKNOWN
    assert fact_of(source, gpu_attributes=("seq_lens",))[0].device is Device.GPU


def test_rank_and_dtype_are_tracked() -> None:
    fact, _ = fact_of("import torch\nx = torch.zeros((4, 5), device='cuda')\nprobe(x[0])")
    assert fact.ndim == 1
    fact, _ = fact_of("import torch\nx = torch.zeros(4, device='cuda')\nprobe(x.sum())")
    assert fact.ndim == 0
    fact, _ = fact_of("import torch\nx = torch.zeros(4, device='cuda')\nprobe(x > 0)")
    assert fact.dtype == "bool"
    fact, _ = fact_of("import torch\nx = torch.zeros(4, device='cuda')\nprobe((x > 0).sum())")
    assert fact.dtype == "int"


@pytest.mark.parametrize(
    "size,ndim",
    [
        ("n", 1),  # an `int` parameter
        ("m", 1),  # a name assigned one
        ("m * (k + 1)", 1),
        ("n, 4", 2),
        ("1, shape", 2),  # several sizes: each is one integer, or the call raises
        ("(n, 4)", 2),
        ("shape", None),  # an int or a tuple
        ("shape * 2", None),  # a tuple repeated, or a number
        ("shape + 1", 1),  # a tuple plus an int raises: a number
        ("EVAL_ITERS", 1),  # a module's integer constant (LitGPT's `eval_iters = 100`)
        ("EVAL_ITERS, k", 2),
        ("SCALE", None),  # a float constant is no size
    ],
)
def test_a_factorys_rank_follows_sizes_known_to_be_ints(size: str, ndim: int | None) -> None:
    source = (f"import torch\nEVAL_ITERS = 100\nSCALE = 0.5\ndef f(n: int, k: int, shape):\n    m = n\n"
              f"    probe(torch.zeros({size}, device='cuda'))\n")
    assert fact_of(source)[0].ndim == ndim


def test_comprehension_target_is_bound_before_the_element() -> None:
    source = "import torch\nxs = torch.zeros(3, 2, device='cuda')\nys = [probe(r) for r in xs]"
    assert fact_of(source)[0].device is Device.GPU


@pytest.mark.parametrize(
    "source,device,pinning_unknown",
    [
        ("import torch\nprobe(torch.zeros(3))", Device.CPU, False),
        ("import torch\nprobe(torch.zeros(3, pin_memory=True))", Device.PINNED, False),
        ("import torch\ndef f(flag):\n    probe(torch.zeros(3, pin_memory=flag))", Device.CPU, True),
        ("def f(lens_cpu):\n    probe(lens_cpu)", Device.CPU, True),
        # A non-blocking device-to-host copy lands in pinned memory (measured: is_pinned() is True).
        ("import torch\nx = torch.ones(3, device='cuda')\nprobe(x.to('cpu', non_blocking=True))", Device.PINNED, False),
        ("import torch\nx = torch.ones(3, device='cuda')\nprobe(x.to('cpu'))", Device.CPU, False),
        # An in-place method returns its receiver: still the pinned buffer; a new tensor is pageable.
        ("import torch\nb = torch.zeros(3, pin_memory=True)\nprobe(b[:2].copy_(torch.ones(2)))", Device.PINNED, False),
        ("import torch\nb = torch.zeros(3, pin_memory=True)\nprobe(b.add(1))", Device.CPU, False),
    ],
)
def test_pinning(source: str, device: Device, pinning_unknown: bool) -> None:
    fact = fact_of(source)[0]
    assert (fact.device, fact.pinning_unknown) == (device, pinning_unknown)


@pytest.mark.parametrize("call", ["torch.polar(torch.ones_like(x), x)", "torch.complex(x, x)",
                                  "torch.bernoulli(x)", "torch.poisson(x)"])
def test_a_function_of_tensors_that_builds_a_tensor_is_where_its_inputs_are(call: str) -> None:
    # Not factories: they take no device and return where their inputs are (Moonvit's rotary table).
    gpu, _ = fact_of(f"import torch\nx = torch.rand(3, device='cuda')\nprobe({call})")
    cpu, _ = fact_of(f"import torch\nx = torch.rand(3)\nprobe({call})")
    assert (gpu.device, cpu.device) == (Device.GPU, Device.CPU)


def test_a_factory_spreading_keywords_is_on_no_known_device() -> None:
    """`torch.zeros(n, **factory_kwargs)`: the keywords may carry a device, so the tensor is not the CPU."""
    fact, _ = fact_of("""
        import torch
        def make(x, kw):
            t = torch.zeros(3, **kw)
            probe(t)
    """)
    assert fact.device is Device.UNKNOWN and fact.tensor_like


@pytest.mark.parametrize(
    "body,device",
    [
        ("with torch.device('cuda'):\n        t = torch.zeros(3)\n    probe(t)", Device.GPU),
        ("dev = torch.device(name)\n    with dev:\n        t = torch.arange(3)\n    probe(t)", Device.GPU),
        ("with torch.device('cpu'):\n        t = torch.zeros(3)\n    probe(t)", Device.CPU),
        # `torch.cuda.device(i)` selects the current GPU; a factory without `device=` stays on the CPU.
        ("with torch.cuda.device(0):\n        t = torch.zeros(3)\n    probe(t)", Device.CPU),
        # A function defined in the block runs later, outside it.
        ("with torch.device('cuda'):\n        def later():\n            probe(torch.zeros(3))", Device.CPU),
        ("with torch.device('cuda'):\n        pass\n    t = torch.zeros(3)\n    probe(t)", Device.CPU),
        # The device of the block applies to factories only: `from_numpy` wraps host memory where it is.
        ("with torch.device('cuda'):\n        t = torch.from_numpy(a)\n    probe(t)", Device.CPU),
    ],
)
def test_a_factory_inside_a_device_block_allocates_on_its_device(body: str, device: Device) -> None:
    fact, evidence = fact_of(f"import torch\ndef f(name, a):\n    {body}\n")
    assert fact.device is device
    if device is Device.GPU:
        assert "created inside `with" in evidence


_MODULE = """
import torch
from torch import nn

class {base_class}:
    def __init__(self, n):
        super().__init__()
        t = torch.arange(n)
        self.table = self._table(n)
        probe(t)

    def _table(self, n):
        return torch.zeros(n)

    def forward(self, x):
        {forward}
"""


@pytest.mark.parametrize(
    "base_class,forward,device",
    [
        ("Rope(nn.Module)", "return x", Device.UNKNOWN),  # the builder's device block decides
        ("Rope(torch.nn.Module)", "return x", Device.UNKNOWN),
        ("Rope", "return x", Device.CPU),  # not a module: nothing builds it under a device block
        ("Rope(nn.Module)", "return self._table(3)", Device.UNKNOWN),  # `t` is in `__init__` itself
    ],
)
def test_a_factory_while_a_module_is_built_is_on_its_builders_device(base_class: str, forward: str,
                                                                     device: Device) -> None:
    fact, evidence = fact_of(_MODULE.format(base_class=base_class, forward=forward))
    assert fact.device is device
    if device is Device.UNKNOWN:
        assert fact.tensor_like and "while an `nn.Module` is built" in evidence


def test_a_helper_the_forward_pass_also_calls_is_not_construction() -> None:
    source = _MODULE.format(base_class="Rope(nn.Module)", forward="return self._table(3)")
    source = source.replace("return torch.zeros(n)", "z = torch.zeros(n)\n        probe(z)\n        return z")
    source = source.replace("        probe(t)\n", "")
    assert fact_of(source)[0].device is Device.CPU
    assert fact_of(source.replace("return self._table(3)", "return x"))[0].device is Device.UNKNOWN


def test_a_flag_that_training_makes_a_host_tensor_is_read_on_the_host() -> None:
    """transformers' layerdrop: `skip = False`, and in training `skip = torch.rand([]) < p`."""
    fact, _ = fact_of("""
        import torch
        def f(training, p):
            skip = False
            if training:
                skip = torch.rand([]) < p
            probe(skip)
    """)
    assert fact.device is Device.CPU


@pytest.mark.parametrize("make", ["nn.Parameter(torch.ones(1))", "nn.Buffer(torch.zeros(4), persistent=False)",
                                  "torch.nn.Parameter(torch.ones(1, device='cpu'))",
                                  "torch.nn.parameter.Parameter(torch.ones(1))"])
def test_a_parameter_or_buffer_is_wherever_its_module_is_moved(make: str) -> None:
    """owlv2's `self.box_bias = nn.Buffer(self.compute_box_bias(...))`, moved by `model.to(device)` with
    its module: a tensor of unknown device, not a Python value, and not where it was made."""
    fact, _ = fact_of(f"import torch\nfrom torch import nn\nw = {make}\nprobe(w)")
    assert fact.device is Device.UNKNOWN and fact.tensor_like


@pytest.mark.parametrize("make", ["torch.nn.Parameter(torch.ones(1, device='cuda'))",
                                  "nn.Buffer(torch.zeros(4, device=torch.cuda.current_device()))",
                                  "nn.Parameter(torch.zeros(4).cuda(), requires_grad=False)"])
def test_module_state_its_code_makes_on_the_gpu_is_on_the_gpu(make: str) -> None:
    """FBGEMM's SSD embedding registers `hash_size_cumsum` made with `device=torch.cuda.current_device()`
    and reads `self.hash_size_cumsum[-1].item()` every forward: nothing moves it off the GPU."""
    fact, _ = fact_of(f"import torch\nfrom torch import nn\nw = {make}\nprobe(w)")
    assert fact.device is Device.GPU


def test_a_method_the_constructor_hands_on_is_not_construction() -> None:
    """vLLM's sampler picks its `forward` in `__init__` (`self.forward = self.forward_cpu`): that method
    runs on every call, outside any device block of the builder."""
    source = _MODULE.format(base_class="Rope(nn.Module)", forward="return x")
    source = source.replace("self.table = self._table(n)", "self.pick = self._table")
    source = source.replace("return torch.zeros(n)", "z = torch.zeros(n)\n        probe(z)\n        return z")
    source = source.replace("        probe(t)\n", "")
    assert fact_of(source)[0].device is Device.CPU


_BUILT = '''
class Rope(nn.Module):
    table = "_cached"

    def __init__(self, n):
        super().__init__()
        self.cos = self._cos(n)
        self.sin = self._sin(n)

    def _cos(self, n):
        return self._grid(n).cos()

    def _grid(self, n):
        return torch.arange(n)

    def _sin(self, n):
        return torch.arange(n).sin()

    def _cached(self, n):
        return torch.arange(n)

    def forward(self, x):
        return x * self._sin(x.shape[0]) + getattr(self, "_named")(x)

    def _named(self, x):
        return torch.arange(3)
'''


def test_the_methods_only_a_constructor_calls_are_the_same_from_libcst_and_from_ast() -> None:
    # `_cos` and `_grid` run only while the module is built; `_sin` also from `forward`, `_cached`
    # through a class attribute and `_named` through a string, so they may run at any time.
    import ast

    from sync_lint.analysis.construction import construction_methods, construction_methods_ast

    expected = frozenset({"__init__", "_cos", "_grid"})
    assert construction_methods(cst.parse_module(_BUILT).body[0]) == expected  # type: ignore[arg-type]
    assert construction_methods_ast(ast.parse(_BUILT).body[0]) == expected  # type: ignore[arg-type]



@pytest.mark.parametrize(
    "source,device,kind",
    [
        # `getattr(obj, "name")` with a literal name reads `obj.name` (a default changes nothing here).
        ("import torch\nclass B:\n    def __init__(self):\n        self.lens = torch.zeros(2, device='cuda')\n"
         "    def f(self):\n        probe(getattr(self, 'lens', None))", Device.GPU, None),
        ("import torch\nt = torch.zeros(2, device='cuda')\nprobe(getattr(t, 'T'))", Device.GPU, None),
        ("import torch\nt = torch.zeros(2, device='cuda')\nprobe(getattr(t, 'shape'))", Device.NOT_TENSOR, "python"),
        # A name of a module: as `torch.bfloat16` reads.
        ("import torch\nprobe(getattr(torch, 'bfloat16'))", Device.NOT_TENSOR, "dtype"),
        # A name known only at run time: unknown as before.
        ("import torch\nt = torch.zeros(2, device='cuda')\nprobe(getattr(t, name))", Device.NOT_TENSOR, "python"),
    ],
)
def test_getattr_with_a_literal_name(source: str, device: Device, kind: str | None) -> None:
    fact, _ = fact_of(source)
    assert fact.device is device and fact.value_kind == kind


def test_an_evidence_step_said_again_at_once_is_said_once() -> None:
    # transformers' `self.shift = torch.max(self.shift, shift)`: the field's fact comes from itself
    # through a cycle, and each round of it had been a step of its own, crowding out the rest.
    from sync_lint.analysis.facts import explain_steps

    origin = Fact(Device.GPU, reason="parameter `y` of `set_shift` receives `y_int`", where="pkg/m.py:9")
    field = Fact(Device.GPU, reason="field `shift` of `Norm` is stored from `torch.max(...)`", where="pkg/m.py:12",
                 via=origin)
    for _ in range(3):
        field = Fact(Device.GPU, reason=field.reason, where=field.where, via=field)
    steps = explain_steps(field, lambda node: 0, lambda node: "")
    assert [where for _text, where, _line in steps] == ["pkg/m.py:12", "pkg/m.py:9"]


@pytest.mark.parametrize("annotation", ["list[list[int]]", "Optional[List[List[int]]]", "list[list[list[bool]]] | None"])
def test_lists_of_lists_of_numbers_hold_python_numbers_at_every_depth(annotation: str) -> None:
    # vLLM's `bad_words_token_ids: list[list[int]]`: the last id of a word indexes one logit, a Python
    # int, so storing a number there is a blocking copy of one element.
    fact, _ = fact_of(f"from typing import List, Optional\ndef f(bad: {annotation}):\n    for ids in bad:\n"
                      "        probe(ids)\n")
    assert fact.value_kind == "list" and fact.items and fact.device is Device.NOT_TENSOR
    innermost = fact
    while innermost.value_kind == "list":
        innermost = innermost.items[0]
    assert innermost.value_kind == "python" and innermost.dtype == "int"


@pytest.mark.parametrize("device,expected", [
    ('"cpu"', Device.CPU), ('torch.device("cpu")', Device.CPU), ('"cuda"', Device.UNKNOWN), ("None", Device.UNKNOWN),
])
def test_a_call_nobody_knows_given_the_cpu_makes_a_host_tensor_by_convention(device: str, expected: Device) -> None:
    # SGLang's grammar backends: `req.grammar.allocate_vocab_mask(..., device="cpu")`, later copied to
    # the GPU with a blocking `.to(device)`.
    fact, _ = fact_of(f"import torch\ndef f(req, n):\n    probe(req.grammar.allocate_vocab_mask(n, device={device}))\n")
    assert fact.device is expected
    if expected is Device.CPU:
        assert fact.by_convention and fact.pinning_unknown


def test_a_library_class_given_the_cpu_builds_an_object_not_a_host_tensor() -> None:
    # `SentenceTransformer(name, device="cpu")` then `model.to("cuda")` moves a module, at load time.
    fact, _ = fact_of("import torch\nfrom lib import Encoder\ndef f(name):\n    probe(Encoder(name, device='cpu'))\n")
    assert fact.device is not Device.CPU


def test_arange_over_a_shape_counts_in_integers() -> None:
    """`torch.arange(mask.shape[0], device=mask.device)` indexes rows: an int64 index (Wav2Vec2-BERT's
    `attention_mask[(torch.arange(...), lens - 1)] = 1`)."""
    fact, _ = fact_of("import torch\ndef f(m: torch.Tensor):\n    probe(torch.arange(m.shape[0], device='cuda'))\n")
    assert fact.is_gpu and fact.dtype == "int"
    fact, _ = fact_of("import torch\ndef f(m: torch.Tensor):\n    probe(torch.arange(0.5, m.shape[0], device='cuda'))\n")
    assert fact.dtype != "int"


def test_a_comparison_of_a_gpu_tensor_with_none_is_a_python_bool() -> None:
    # Megatron's multimodal example: `if target != None:` of a CUDA tensor. `Tensor.__ne__(None)` is not
    # implemented, so Python compares identities and the test reads nothing from the device.
    source = (
        "import torch\n\n\ndef f(n):\n    target = torch.zeros(n, device='cuda')\n"
        "    if target != None:\n        return 1\n    if target != 0:\n        return 2\n"
    )
    from fixture_support import lint_text

    assert [(d.code, d.start.row) for d in lint_text(source).diagnostics] == [("SL104", 8)]


def test_a_comparison_with_a_string_is_a_python_bool() -> None:
    # transformers' weight loading: `param_device == "disk"` of a value `--strict` takes for a tensor.
    # `Tensor.__eq__` of a string is not implemented either; Python compares identities.
    source = (
        "import torch\n\n\ndef f(n, mode):\n    target = torch.zeros(n, device='cuda')\n"
        "    if target == 'disk':\n        return 1\n    if f'{mode}' != target:\n        return 2\n"
        "    if target == 0:\n        return 3\n"
    )
    from fixture_support import lint_text

    assert [(d.code, d.start.row) for d in lint_text(source).diagnostics] == [("SL104", 10)]


def test_the_index_reads_a_comparison_with_a_string_as_a_python_bool(tmp_path) -> None:
    from fixture_support import check_small_project

    found = check_small_project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/a.py": (
            "import torch\n\n\ndef is_disk(n):\n    return torch.zeros(n, device='cuda') == 'disk'\n\n\n"
            "def is_zero(n):\n    return torch.zeros(n, device='cuda') == 0\n\n\n"
            "def use(n):\n    if is_disk(n):\n        return 1\n    if is_zero(n):\n        return 2\n"
        ),
    })
    assert [(d.code, d.start.row) for d in found] == [("SL104", 15)]


def test_an_isinstance_test_before_an_operand_says_it_is_no_tensor_there() -> None:
    # SGLang's CUDA-graph backends: `isinstance(output, (list, tuple)) and output` tests a list or tuple;
    # `isinstance(self.bias, torch.Tensor) or self.bias == 0.0` compares a float. The same operands after
    # a test that says nothing of their type are read from the device.
    from fixture_support import lint_text

    source = (
        "import torch\n\n\ndef f(n, flag):\n    out = torch.zeros(n, device='cuda')\n"
        "    if isinstance(out, (list, tuple)) and out:\n        return 1\n"
        "    if isinstance(out, torch.Tensor) or out == 0.0:\n        return 2\n"
        "    if flag and out:\n        return 3\n"
        "    if flag or out == 0.0:\n        return 4\n"
    )
    assert [(d.code, d.start.row) for d in lint_text(source).diagnostics] == [("SL104", 10), ("SL104", 12)]


def test_a_dict_made_with_dict_and_filled_under_run_time_keys_holds_its_tensors() -> None:
    # Genesis's locomotion env: `self.episode_sums = dict()`, one GPU buffer per reward name, each read
    # back with `.item()` when environments reset. `dict()` is an empty dict as `{}` is.
    from fixture_support import lint_text

    source = (
        "import torch\n\n\nclass Env:\n    def __init__(self, names, n):\n"
        "        self.funcs, self.sums = dict(), dict()\n"
        "        for name in names:\n            self.sums[name] = torch.zeros(n, device='cuda')\n\n"
        "    def reset(self, idx):\n        for key in self.sums.keys():\n"
        "            yield self.sums[key][idx].mean().item()\n\n\n"
        "def table(names, n):\n    host = dict()\n    for name in names:\n        host[name] = torch.zeros(n)\n"
        "    return [host[k].item() for k in names]\n"
    )
    assert [(d.code, d.start.row) for d in lint_text(source).diagnostics] == [("SL101", 12)]


def test_a_tensor_made_on_the_device_of_an_unknown_value_names_that_convention_in_its_evidence() -> None:
    # The finding is `convention` because `w.device` is; the evidence says so at its line, after the
    # steps that lead to it.
    from fixture_support import lint_text

    source = (
        "import torch\n\n\ndef rank(w, n):\n    t = torch.zeros(n, device=w.device)\n"
        "    m = t.mean()\n    if m > 1:\n        return 1\n"
    )
    (found,) = lint_text(source).diagnostics
    assert (found.code, found.start.row, found.confidence) == ("SL104", 7, "convention")
    assert found.evidence.endswith("`w.device` is an accelerator device: the device of a value whose device is "
                                   "not known, taken for an accelerator at line 5")


def test_the_default_device_is_a_device_of_no_known_side() -> None:
    # The CPU unless `torch.set_default_device` or a `with torch.device(d):` block chose another: neither a
    # tensor nor a plain Python value, so a `device` that is it or `"cpu"` on another path stays unknown.
    fact = fact_of("import torch\nprobe(torch.get_default_device())")[0]
    assert (fact.value_kind, fact.device, fact.device_value) == ("device", Device.NOT_TENSOR, Device.UNKNOWN)

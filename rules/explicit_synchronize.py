"""# SL401 `explicit-synchronize`: an explicit wait for the GPU

## What it does
Flags calls that make the host wait for the GPU by design:

- `torch.cuda.synchronize()` and `torch.accelerator.synchronize()` (the whole device);
- `Stream.synchronize()` on a stream from `torch.cuda.Stream()`,
  `torch.cuda.current_stream()`, `torch.cuda.default_stream()` or
  `torch.cuda.ExternalStream(...)`, including through a name or a `self.`
  attribute it was assigned to;
- `Event.synchronize()` and `Event.elapsed_time()` on an event from
  `torch.cuda.Event(...)`;
- the same on an element of a list or tuple of them (`self.events[i].synchronize()`
  after `self.events = [torch.cuda.Event() for _ in range(2)]`, ping-pong buffers);
- `torch.cuda.empty_cache()` and `torch.accelerator.empty_cache()`;
- `synchronize()` and `empty_cache()` of a device module: `torch.get_device_module()`
  (with no argument, a variable, or a literal `"cuda..."` device), a name bound to one, or an
  attribute named `device_module` (SGLang's device-generic spelling, 43 such calls in
  SGLang 0.5.23). On a CUDA machine `torch.get_device_module()` returns the `torch.cuda`
  module itself (checked on the H200, torch 2.11, with and without a device argument), so
  these are `torch.cuda.synchronize()` and `torch.cuda.empty_cache()`.

Look-alikes stay quiet: `threading.Event().wait()`, or a `.synchronize()` on an
object the linter cannot tie to a torch stream or event.

## Why is this bad
`torch.cuda.synchronize()` calls `c10::cuda::device_synchronize` →
`cudaDeviceSynchronize`; `Stream.synchronize()` calls `c10::cuda::stream_synchronize`
(`c10/cuda/CUDAStream.h`); `Event.synchronize()` calls `cudaEventSynchronize`
(`c10/cuda/CUDAEvent.h`). The host blocks until the GPU has drained the work.
`Event.elapsed_time()` does not wait itself, but it raises unless both events
have completed (`CUDAEvent.h`: "Both events must be completed before
calculating elapsed time"), so it only runs behind such a wait.
`torch.cuda.empty_cache()` releases cached blocks with `cudaFree`, which
synchronizes implicitly; `torch.accelerator.empty_cache()` is the same call on a CUDA
machine (`torch._C._accelerator_emptyCache`). On an H200 (torch 2.11) behind 30 ms of
queued work, each waited 30.1-30.2 ms with a freed block cached and returned at once with
none, and so did `torch.get_device_module().empty_cache()`
(`benchmarks/gpu/empty_cache_probe.py`, `docs/verification/empty-cache-h200-torch2.11.0.md`).

Measured on an H100 (torch 2.11), with about 41-60 ms of GPU work queued:
`torch.cuda.synchronize()` blocked 40.4 ms (59.9 ms in a 60 ms run),
`Event.synchronize()` 59.9 ms, `torch.cuda.current_stream().synchronize()`
38.4 ms of 40, `empty_cache()` with a cached block 60.3 ms; `elapsed_time` on
events the GPU had not reached raised at once (0.15 ms).
`torch.cuda.set_sync_debug_mode` reports **none** of these except
`Stream.synchronize()`: a runtime check built on debug mode alone misses them.

An `elapsed_time(end)` after a reported wait (`end.synchronize()`, another event's
`synchronize()`, `torch.cuda.synchronize()` or a stream's `synchronize()`), in the same
block or one around it and with no `end.record()` in between, is not reported again: the
events are complete by then (or, on another stream than the event waited on, `elapsed_time`
raises), and the wait before it is the one to move. vLLM's step timer waits on its last
step's event and then reads every step's `elapsed_time` (`v1/worker/gpu/async_utils.py`).
A wait inside an `if`, a loop, a lambda or a nested function does not count after it, and `end.record()` starts `end` over. Nor is an
`elapsed_time` in the body of an `if` or `while` that tests an event's `.query()` (the polling
loop of a transfer queue: `while q[0].end.query(): t = q.popleft(); t.start.elapsed_time(t.end)`):
the host has seen the event done and waits for nothing. Two such lines in vLLM's KV-offload and
encoder-cache workers were read as false findings.

A receiver is taken for an event or stream when it was made by a torch constructor
(`torch.cuda.Event()`, `torch.Event()`, `self.device_module.Stream()`) or is annotated as one
(`done: torch.cuda.Event`, `self.copy_ready: torch.Event | None = None`): vLLM's input batch
waits on `self.async_copy_ready_event`, handed over through a `torch.Event` parameter. A
`threading.Event` is not one.

## Example
```python
torch.cuda.synchronize()  # SL401: drains the whole device
start.record(); run(); end.record()
end.synchronize()  # SL401
ms = start.elapsed_time(end)  # not reported again: the wait above is the one to move
```

Use instead: order GPU work on the GPU with events (`stream.wait_event(ev)`,
`stream.wait_stream(s)`, no host wait), poll with `event.query()`, and keep
timing and `empty_cache()` out of the steady-state loop.

## Fix safety
No automatic fix: whether a wait is needed depends on what the host does next.

## When to ignore
Benchmarks, start-up and shutdown, and the one place that must hand results
to the host. Mark intentional waits with `with gpu_sync_allowed():` or
`# noqa: SL401`.
"""

from __future__ import annotations

import libcst as cst

from sync_lint.rulekit import Example, Rule, abbreviate, call_name, method_receiver
from sync_lint.syntax import descendants

# Qualified functions that wait for the device, and what to tell the user.
_WAITS = {
    "torch.cuda.synchronize": "waits for all work on the device",
    "torch.accelerator.synchronize": "waits for all work on the device",
    "torch.cuda.empty_cache": "frees cached blocks with `cudaFree`, which waits for the device",
    "torch.accelerator.empty_cache": "frees cached blocks with `cudaFree`, which waits for the device",
}
# Freeing the cache waits only when a freed block is cached: no event is known complete after it.
_EMPTY_CACHE = frozenset({"torch.cuda.empty_cache", "torch.accelerator.empty_cache"})
# Methods of stream and event handles, and of a device module (`torch.get_device_module()`, which is
# `torch.cuda` on a CUDA machine), that wait (or need a completed wait).
_HANDLE_WAITS = {
    ("stream", "synchronize"): "waits for all work queued on the stream",
    ("event", "synchronize"): "waits until the GPU reaches the event",
    ("event", "elapsed_time"): "needs both events completed, so it sits behind a wait for the GPU",
    ("device-module", "synchronize"): _WAITS["torch.cuda.synchronize"],
    ("device-module", "empty_cache"): _WAITS["torch.cuda.empty_cache"],
}

_HANDLE_METHODS = frozenset({"record", *(method for _, method in _HANDLE_WAITS)})


class _Waited:
    """Events known complete at a point of a block: synchronized since their last `record()`, or
    recorded before a whole-device or stream wait."""

    def __init__(self) -> None:
        self.events: set[str] = set()
        self.device = False
        self.recorded: set[str] = set()  # recorded after the last device wait

    def copy(self) -> "_Waited":
        copied = _Waited()
        copied.events, copied.device, copied.recorded = set(self.events), self.device, set(self.recorded)
        return copied

    def completed(self, event: str) -> bool:
        return event in self.events or (self.device and event not in self.recorded)


def _polls_an_event(test: cst.BaseExpression) -> bool:
    """Whether a condition calls `.query()` with no arguments (an event's or a stream's poll)."""
    return any(isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute) and call_name(node) == "query"
               and not node.args for node in descendants(test))


class ExplicitSynchronize(Rule):
    code = "SL401"
    name = "explicit-synchronize"
    summary = "`torch.cuda.synchronize()`, `Stream/Event.synchronize()`, `empty_cache()`: explicit host waits"
    triggers = ("synchronize(", "elapsed_time(", "empty_cache(")
    examples = (
        Example("import torch\ntorch.cuda.synchronize()\n", (2,)),
        Example("import torch\ns = torch.cuda.current_stream()\ns.synchronize()\n", (3,)),
        Example("import threading\nev = threading.Event()\nev.wait()\n"),
        Example("import torch\nstart = torch.cuda.Event(enable_timing=True)\n"
                "end = torch.cuda.Event(enable_timing=True)\nend.synchronize()\nms = start.elapsed_time(end)\n",
                (4,)),
        Example("import torch\nstart = torch.cuda.Event(enable_timing=True)\n"
                "end = torch.cuda.Event(enable_timing=True)\nms = start.elapsed_time(end)\n", (4,)),
        Example("class Lock:\n    def synchronize(self):\n        pass\n\nLock().synchronize()\n"),
        Example("import torch\nevents = [torch.cuda.Event() for _ in range(2)]\nevents[1].synchronize()\n", (3,)),
        Example("import torch\npair = (torch.cuda.Stream(), torch.cuda.Stream())\nfor s in pair:\n"
                "    s.synchronize()\n", (4,)),
        Example("import threading\nlocks = [threading.Event() for _ in range(2)]\nlocks[0].synchronize()\n"),
        Example("import torch\nstart = torch.cuda.Event(enable_timing=True)\n"
                "end = torch.cuda.Event(enable_timing=True)\nwhile end.query():\n    ms = start.elapsed_time(end)\n"),
        Example("import torch\nstart = torch.cuda.Event(enable_timing=True)\n"
                "mid = torch.cuda.Event(enable_timing=True)\nend = torch.cuda.Event(enable_timing=True)\n"
                "end.synchronize()\nms = start.elapsed_time(mid)\n", (5,)),
        Example("import torch\nstart = torch.cuda.Event(enable_timing=True)\n"
                "end = torch.cuda.Event(enable_timing=True)\nif end.query():\n    pass\nelse:\n"
                "    ms = start.elapsed_time(end)\n", (7,)),
        Example("import torch\ndef wait(done: torch.cuda.Event, stream: torch.Stream | None):\n"
                "    done.synchronize()\n    stream.synchronize()\n", (3, 4)),
        Example("import threading\ndef wait(done: threading.Event):\n    done.synchronize()\n"),
    )

    def __init__(self) -> None:
        # Which events a reported wait has completed, per block: a wait inside an `if`, a loop or a
        # nested function says nothing after it, and `ev.record()` starts `ev` over.
        self._waits = [_Waited()]
        self._lambdas = 0
        # Blocks that run only once an event's `.query()` said it is done, and whether each block
        # entered (innermost last) is inside one.
        self._polled_bodies: set[int] = set()
        self._polled: list[bool] = []

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._waits.append(_Waited())

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self._waits.pop()

    def visit_If(self, node: cst.If) -> None:
        if _polls_an_event(node.test):
            self._polled_bodies.add(id(node.body))

    def visit_While(self, node: cst.While) -> None:
        if _polls_an_event(node.test):
            self._polled_bodies.add(id(node.body))

    def visit_IndentedBlock(self, node: cst.IndentedBlock) -> None:
        self._polled.append(id(node) in self._polled_bodies or bool(self._polled and self._polled[-1]))
        self._waits.append(self._waits[-1].copy())

    def leave_IndentedBlock(self, original_node: cst.IndentedBlock) -> None:
        self._polled.pop()
        self._waits.pop()

    def visit_Lambda(self, node: cst.Lambda) -> None:
        self._lambdas += 1

    def leave_Lambda(self, original_node: cst.Lambda) -> None:
        self._lambdas -= 1

    def visit_Call(self, node: cst.Call) -> None:
        qual = self.ctx.imports.resolve(node.func)
        waited = self._waits[-1] if not self._lambdas else _Waited()  # a lambda's body may never run
        if qual in _WAITS:
            self.report(node, f"`{qual}()` {_WAITS[qual]}; order GPU work with events and stream waits instead")
            if qual not in _EMPTY_CACHE:
                waited.device = True
                waited.recorded.clear()
            return
        receiver = method_receiver(node)
        method = call_name(node) or ""
        if receiver is None or method not in _HANDLE_METHODS:
            return  # the receiver is not evaluated for the many calls that can be neither
        fact = self.ctx.devices.fact(receiver)
        kind = fact.value_kind or ""
        if kind == "event" and method == "record":
            event = self.ctx.code(receiver)
            waited.events.discard(event)
            waited.recorded.add(event)
            return
        what = _HANDLE_WAITS.get((kind, method))
        if what is None:
            return
        if kind == "device-module" and (self.ctx.imports.resolve(receiver) or "").startswith("torch."):
            return  # a module named outright: `torch.cuda.*` is in `_WAITS`, another platform's is not a CUDA wait
        if method == "elapsed_time" and self._polled and self._polled[-1]:
            return  # polled: the host saw the event complete, and `elapsed_time` itself never waits
        if method == "elapsed_time" and node.args and waited.completed(self.ctx.code(node.args[0].value)):
            # `end.record(); end.synchronize(); start.elapsed_time(end)`: the wait before it is the one
            # reported; the events are complete by now, and this call adds no wait of its own.
            return
        if (kind, method) == ("event", "synchronize"):
            waited.events.add(self.ctx.code(receiver))
        if method == "synchronize":
            # A stream: what it ran is done, events recorded on it too. An event: so is every event
            # recorded before it on its stream; one on another stream may still be running, but then
            # `elapsed_time` raises rather than waits, so the wait here is still the one to move.
            waited.device = True
            waited.recorded.clear()
        # Why the receiver is a handle, each step with where it was made (in this file or another);
        # a name alone is said as such.
        evidence = None
        if fact.from_name and not fact.reason:
            name = f"`{fact.subject}`" if fact.subject else "the receiver"
            handle = "device module" if kind == "device-module" else kind
            evidence = f"{name} is taken for a torch {handle} by its name"
        if kind == "device-module":
            self.report(node, f"`{abbreviate(self.ctx.code(node.func))}()` {what}; order GPU work with events and "
                              "stream waits instead", fact=fact, evidence=evidence)
            return
        self.report(
            node,
            f"`{kind.capitalize()}.{method}()` {what}; poll with `event.query()` or order work with "
            "`stream.wait_event()`",
            fact=fact,
            evidence=evidence,
        )

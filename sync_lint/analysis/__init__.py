"""The analyses the engine keeps up to date during its one walk, and rules read.

Each analysis is a provider: it declares which node types it needs to see (when
the walk enters or leaves a node, or has just walked one of its fields), keeps its
own state, and answers read-only queries. Rules never write into an analysis.

| provider | module | answers |
|---|---|---|
| `SyntaxMarks` | `marks.py` | is this node assigned to, tested for truth; the current statement; inside an allowed-sync `with` |
| `ImportTable` | `imports.py` | what a dotted name refers to (`th.nonzero` -> `torch.nonzero`) |
| `DeviceAnalysis` | `device.py` (binder `flow.py`, evaluator `evaluate.py`) | the `Fact` of any expression |
| `HostMirrors` | `mirrors.py` | the `_cpu` mirror of a GPU tensor, where one provably exists |

Nothing in this package's `__init__` imports libcst: configuration loads the
naming-convention defaults (`conventions.py`) without a parser.
"""

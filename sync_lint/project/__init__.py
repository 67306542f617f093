"""The project index: what the whole repository knows, for the per-file analysis to ask.

| module | what |
|---|---|
| `summary.py` | a per-file summary from one `ast` parse: classes, functions, call sites, stores, dict entries |
| `values.py` | the symbolic values summaries are written in |
| `roots.py` | a file's project root and module name |
| `store.py` | the cache: summaries and results in `.sync-lint-cache/index.sqlite` |
| `build.py` | bringing a project's cache up to date (summaries in parallel) |
| `background.py` | that update in a forked child, while a small check loads the parser |
| `ahead.py` | the hot-path pass's cached call edges, read while that child updates |
| `index.py` | the joined tables: names, re-exports, the class hierarchy, who calls and stores what |
| `infer.py` | the facts of fields, parameters, returns, globals and entries, to a fixed point |
| `view.py` | one file's window onto the index, used by `analysis/evaluate.py` |

Nothing here imports libcst: summaries come from the standard library's `ast`.
"""

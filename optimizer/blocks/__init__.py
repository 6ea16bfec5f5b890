"""The block rule (new farmland in contiguous blocks, optional forest connectivity): the graph
and its cuts and separation (`cuts`), the rule as the model sees it with presolve, repair and the
blocks of a plan (`rule`), the solve methods around a back-end — branch-and-cut, row generation,
flow — (`search`, `flow`), the greedy construction (`greedy`), the constructed plan meeting every
target over an inner approximation of the rule (`construct`), fix-and-optimise neighbourhoods on a
process pool or Dask (`neighbourhood`), the decomposition method `lns` (`decompose`), and large
solver steps under a hard deadline in a child process (`deadline`).

May import: `optimizer.model`, `instances`, `solvers`.
"""

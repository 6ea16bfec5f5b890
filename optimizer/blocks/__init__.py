"""The block rule (new farmland in contiguous blocks, optional forest connectivity): the graph
and its cuts and separation (`cuts`), the rule as the model sees it with presolve, repair and the
blocks of a plan (`rule`), the solve methods around a back-end — branch-and-cut, row generation,
flow — (`search`, `flow`), the greedy construction (`greedy`), the constructed plan meeting every
target over an inner approximation of the rule (`construct`), fix-and-optimise neighbourhoods on a
process pool or Dask (`neighbourhood`), and the decomposition method `lns` (`decompose`).

May import: `optimizer.model`, `instances`, `solvers`.
"""

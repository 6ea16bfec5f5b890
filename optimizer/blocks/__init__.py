"""The block rule (new farmland in contiguous blocks, optional forest connectivity): the graph
and its cuts and separation (`cuts`), the rule as the model sees it with presolve, repair and the
blocks of a plan (`rule`), the solve methods around a back-end — branch-and-cut, row generation,
flow — (`search`, `flow`), and the greedy construction (`greedy`).

May import: `optimizer.model`, `instances`, `solvers`.
"""

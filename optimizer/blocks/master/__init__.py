"""The cluster decomposition of the block-rule model (Dantzig–Wolfe / Lagrangian), used by the
`lns` method: a decomposed first plan (price-and-branch over cluster columns) and a Lagrangian
bound from the cluster problems.

Candidate clusters (connected components of the candidate adjacency) interact only through a
dozen aggregate rows; `partition` splits the model into local and coupling rows, `columns`
prices rule-abiding plans for all clusters at once, `restricted` assembles a plan from them in a
small master MIP, `bound` gives a valid lower bound from the duals of the coupling rows,
`directed` a stronger LP bound for a giant cluster's problem (the rule as arborescences).

May import: solvers/, optimizer.model, and the other modules of optimizer.blocks.
"""

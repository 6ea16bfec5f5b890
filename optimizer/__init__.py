"""greenbelt's optimiser: Scenario + Instance -> ArrayModel -> solve -> Plan -> files.

Sub-packages, one stage of the data flow each; a stage imports only the stages above it in
this list (and `instances`, `solvers`), never one below (`tests/test_architecture.py`):

    model/      the scenario, its targets as linear rows, the array model, presolve, KPIs
    blocks/     the contiguous-farmland block rule: cuts, the rule, search methods, greedy
    plan/       solving a scenario into a Plan, and checking any plan file against the geometry
    reporting/  the files a plan is written to: CSV, JSON, GeoPackage, maps
    batch/      many scenarios: sweep, scenario specs, frontier, comparison of plans
    cli/        the `greenbelt` command line

See ARCHITECTURE.md for where to change a target, a back-end, the block rule or an output.
"""

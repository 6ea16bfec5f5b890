"""HiGHS 1.14.0 returns a suboptimal MIP solution with status Optimal (singleton column stuffing).

    pip install highspy==1.14.0 && python repro.py     # wrong: 69427 with presolve on
    pip install highspy==1.15.1 && python repro.py     # right: 17768 either way

minimal.mps:  min 61659 x0 + 5114 x1 + 2654 x2 + 10000 t
              s.t. 6 x0 + 14 x1 + 8 x2 + t >= 23,  x binary,  t >= 0 continuous
Optimum: x1 = x2 = 1, t = 1, objective 17768. HiGHS 1.14.0 with default options returns
x0 = x1 = x2 = 1, t = 0, objective 69427, "Optimal", dual bound 69427.
"""

import sys
from pathlib import Path

import highspy

HERE = Path(__file__).resolve().parent


def solve(path: Path, **options: object) -> tuple[str, float, float, list[float]]:
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    for key, value in options.items():
        h.setOptionValue(key, value)
    h.readModel(str(path))
    h.run()
    info = h.getInfo()
    return (h.modelStatusToString(h.getModelStatus()), info.objective_function_value,
            info.mip_dual_bound, [round(v, 4) for v in h.getSolution().col_value])


if __name__ == "__main__":
    print("HiGHS", highspy.Highs().version())
    wrong = False
    for name, optimum in (("minimal.mps", 17768.0), ("elastic.mps", 27512.471727761)):
        for options in ({}, {"mip_allow_restart": False}, {"presolve": "off"}):
            status, obj, bound, x = solve(HERE / name, **options)
            bad = obj > optimum + 1e-6 * optimum
            wrong |= bad
            note = f"  WRONG (optimum {optimum:.4f})" if bad else ""
            print(f"{name:12s} {str(options):30s} {status} objective {obj:.4f} bound {bound:.4f}"
                  f"{note}")
    sys.exit(1 if wrong else 0)

"""The fraction of mpi4py's test cases that pass on shmpi, from the logs of
``REST=1 scripts/mpi4py_suite.sh`` (and of the must-pass files): a file whose run
printed no summary (its module failed to import, or the job died) counts every test
method it defines as failed.

    python rest_fraction.py MPI4PY_TEST_DIR LOG_DIR N
"""

import ast
import pathlib
import re
import sys

testdir, logdir, n = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), sys.argv[3]


def defined_cases(path):
    """Test methods per class, counting inherited ones for each concrete class."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    classes = {c.name: c for c in tree.body if isinstance(c, ast.ClassDef)}

    def methods(name, seen=()):
        c = classes.get(name)
        if c is None or name in seen:
            return set()
        own = {f.name for f in c.body if isinstance(f, ast.FunctionDef) and f.name.startswith("test")}
        for b in c.bases:
            bname = b.id if isinstance(b, ast.Name) else getattr(b, "attr", None)
            own |= methods(bname, (*seen, name))
        return own

    concrete = [
        c.name for c in classes.values()
        if any((getattr(b, "attr", None) or getattr(b, "id", None)) == "TestCase" for b in c.bases)
        or any(b.id in classes for b in c.bases if isinstance(b, ast.Name))
    ]
    return sum(len(methods(name)) for name in concrete)


total = passed = 0
rows = []
for path in sorted(testdir.glob("test_*.py")):
    log = logdir / f"{path.stem}.n{n}.log"
    if not log.exists():
        continue
    text = log.read_text(encoding="utf-8", errors="replace")
    sums = re.findall(r"SUITE rank=\d+ file=\S+ ran=(\d+) failed=(\d+) errors=(\d+) skipped=(\d+)", text)
    if sums:
        ran = int(sums[0][0])
        bad = max(int(f) + int(e) for _, f, e, _ in sums)
        ok = max(0, ran - bad - int(sums[0][3]))
    else:
        ran, ok = defined_cases(path), 0
    total += ran
    passed += ok
    rows.append((path.stem, ran, ok))
for name, ran, ok in rows:
    print(f"{name:<24} {ok:>4} of {ran:<4} pass")
print(f"mpi4py {testdir.parent.name} suite at N = {n}: {passed} of {total} cases pass "
      f"({100 * passed / max(total, 1):.0f}%; a skipped case does not count as passed)")

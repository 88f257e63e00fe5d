#!/usr/bin/env python3
"""rust-analyzer.py PROJECT_JSON CRATE_ROOT: add our crate to the kernel's rust-project.json.

`make M=... rust-analyzer` runs the kernel's generate_rust_analyzer.py, which lists the
kernel's crates but takes an external .rs file as a crate root only when a Kbuild or Makefile
in the file's own directory names its object. Ours is named by the top-level Kbuild
(rust/dax_hmem_main.o), so it is added here, the way the generator adds any driver crate:
edition 2021, the kernel's generated cfgs, and the same dependencies.
"""

import json
import sys
from pathlib import Path

# The generator's dependencies for a driver crate (scripts/generate_rust_analyzer.py, 7.3).
DRIVER_DEPS = ("core", "kernel", "pin_init", "zerocopy", "zerocopy_derive")


def main(argv):
    if len(argv) != 2:
        print("error: usage: rust-analyzer.py PROJECT_JSON CRATE_ROOT", file=sys.stderr)
        return 2
    project_path, root = Path(argv[0]), Path(argv[1]).resolve()
    try:
        project = json.loads(project_path.read_text())
        crates = project["crates"]
        index = {c["display_name"]: i for i, c in enumerate(crates)}
        kernel = crates[index["kernel"]]
    except (OSError, ValueError, KeyError) as e:
        print(f"error: {project_path} is not the kernel's rust-project.json ({e})", file=sys.stderr)
        return 1
    missing = [d for d in DRIVER_DEPS if d not in index]
    if missing:
        print(f"error: {project_path} lacks the crates {', '.join(missing)}", file=sys.stderr)
        return 1
    name = root.stem
    crates[:] = [c for c in crates if c["display_name"] != name]
    crates.append({
        "display_name": name,
        "root_module": str(root),
        "is_workspace_member": True,
        "deps": [{"crate": index[d], "name": d} for d in DRIVER_DEPS],
        "cfg": kernel["cfg"],
        "edition": "2021",
        "env": {"RUST_MODFILE": "This is only for rust-analyzer"},
    })
    project_path.write_text(json.dumps(project, sort_keys=True, indent=4) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

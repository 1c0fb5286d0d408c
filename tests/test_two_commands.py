"""The README's two commands: `.ci/run` runs the README's test command, and both name tasks.py's commands."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _readme_blocks() -> list[str]:
    section = ROOT.joinpath("README.md").read_text().split("## The two commands", 1)[1].split("\n## ", 1)[0]
    return [b.strip() for b in re.findall(r"```bash\n(.*?)```", section, re.S)]


def test_ci_runs_the_readme_test_command():
    demo, test = _readme_blocks()
    commands = [line for line in ROOT.joinpath(".ci", "run").read_text().splitlines()
                if line.strip() and not line.startswith("#") and not line.startswith(("set ", "cd "))]
    assert commands == [test] == ["python3 tasks.py test"]
    assert demo == "python3 tasks.py demo"


def test_the_commands_exist_in_tasks_py():
    import importlib.util

    spec = importlib.util.spec_from_file_location("tasks", ROOT / "tasks.py")
    tasks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tasks)
    assert {cmd.split()[-1] for cmd in _readme_blocks()} <= set(tasks.COMMANDS)

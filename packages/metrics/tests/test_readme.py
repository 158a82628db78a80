"""The README's CPU example runs as written."""

import re
from pathlib import Path


def test_readme_cpu_example_runs():
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    example = re.findall(r"```python\n(.*?)```", readme, flags=re.DOTALL)[0]
    exec(compile(example, "README.md", "exec"), {})

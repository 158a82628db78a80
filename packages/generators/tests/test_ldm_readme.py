"""The README's LDM example runs as written."""

import re
from pathlib import Path


def test_ldm_section_examples_run():
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    section = readme.split("\n## LDM\n", 1)[1].split("\n## ", 1)[0]
    examples = re.findall(r"```python\n(.*?)```", section, re.S)
    assert examples, "the LDM section of README.md should show an example"
    for example in examples:
        exec(compile(example, "README.md", "exec"), {})

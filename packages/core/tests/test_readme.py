"""The README's example is a test: it must run as written."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_example_runs(capsys):
    example = README.read_text().split("## Example", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", example, flags=re.DOTALL)
    assert len(blocks) == 1, "the README's Example section has no python block"
    exec(compile(blocks[0], str(README), "exec"), {})
    assert capsys.readouterr().out.strip() == "10 10"

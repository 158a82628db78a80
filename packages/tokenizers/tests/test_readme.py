"""The README's examples run as written."""

import re
from pathlib import Path


def test_readme_examples_run(tmp_path, monkeypatch):
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    examples = re.findall(r"```python\n(.*?)```", readme, re.S)
    assert len(examples) >= 2, "README.md should show the models and the losses"
    monkeypatch.chdir(tmp_path)
    for example in examples:
        example = example.replace('"/tmp/fa-vae-tiny"', repr(str(tmp_path / "fa-vae-tiny")))
        exec(compile(example, "README.md", "exec"), {})

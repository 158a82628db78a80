"""The README's examples run as written."""

import re
from pathlib import Path


def test_readme_examples_run(tmp_path, monkeypatch):
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    examples = re.findall(r"```python\n(.*?)```", readme, re.S)
    assert examples, "README.md should show a runnable example"
    monkeypatch.chdir(tmp_path)
    for example in examples:
        example = example.replace('"/tmp/lightningdit-tiny"', repr(str(tmp_path / "ldit")))
        exec(compile(example, "README.md", "exec"), {})
    assert (tmp_path / "ldit" / "model.safetensors").is_file()

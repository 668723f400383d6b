"""The README's Python snippet runs as written."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_snippet_runs(tmp_path, monkeypatch):
    text = README.read_text()
    section = text.split("## Python API", 1)[1]
    snippet = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(snippet, "README.md", "exec"), namespace)
    assert namespace["imgs"].shape == (2, 1, 28, 28)
    assert namespace["nll"].shape == (8,)
    assert (tmp_path / "runs/example/model/model.safetensors").is_file()

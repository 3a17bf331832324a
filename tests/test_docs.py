"""The documentation site (mkdocs.yml, docs/): every page of the navigation exists, the
tutorial has every page in English and in Chinese with the same code, and every public
module has a reference page. The strict build itself (`mkdocs build --strict` in .ci/run)
runs every tutorial code block; the last test runs it here too where MkDocs is installed."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
TUTORIAL = sorted(p for p in (DOCS / "tutorial").glob("*.md") if not p.name.endswith(".zh.md"))
FENCE = re.compile(r"^```python exec[^\n]*\n(.*?)^```$", re.S | re.M)


def _nav_files():
    text = (ROOT / "mkdocs.yml").read_text()
    nav = text[text.index("\nnav:"):]
    return re.findall(r":\s*([\w./-]+\.md)\s*$", nav, re.M)


def test_every_page_of_the_navigation_exists():
    files = _nav_files()
    assert len(files) >= 30
    missing = [f for f in files if not (DOCS / f).is_file()]
    assert not missing


def test_the_tutorial_has_the_seeds_topics_in_both_languages():
    assert len(TUTORIAL) == 13
    for page in TUTORIAL:
        chinese = page.with_name(page.stem + ".zh.md")
        assert chinese.is_file(), f"{chinese.name} is missing"
        english_code, chinese_code = FENCE.findall(page.read_text()), \
            FENCE.findall(chinese.read_text())
        assert english_code, f"{page.name} runs no code"
        assert english_code == chinese_code, f"{page.name}: the two languages' code differs"
        assert re.search(r"[\u4e00-\u9fff]", chinese.read_text()), chinese.name
        assert f"tutorial/{page.name}" in _nav_files()


def test_the_seeds_terms_are_used_in_chinese():
    text = "".join(p.with_name(p.stem + ".zh.md").read_text() for p in TUTORIAL)
    for term in ["神经元", "激活函数", "反向传播", "梯度消失", "损失函数", "学习率", "过拟合",
                 "隐藏层", "梯度下降", "神经元死亡"]:
        assert term in text, term


@pytest.mark.parametrize("module", ["layerwise.models", "layerwise.layers",
                                    "layerwise.activations", "layerwise.losses",
                                    "layerwise.initializers", "layerwise.optimizers",
                                    "layerwise.optimizers.schedules",
                                    "layerwise.regularizers", "layerwise.callbacks",
                                    "layerwise.metrics", "layerwise.data",
                                    "layerwise.datasets", "layerwise.saving",
                                    "layerwise.export", "layerwise.plot", "layerwise.sklearn"])
def test_every_public_module_has_a_reference_page(module):
    pages = "".join(p.read_text() for p in (DOCS / "reference").glob("*.md"))
    assert f"::: {module}\n" in pages


def test_the_site_builds_strictly(tmp_path):
    """The whole site, every tutorial block run, both languages (about 30 s)."""
    if os.environ.get("LAYERWISE_SITE_BUILT") == "1":
        pytest.skip(".ci/run built the site strictly just before the tests")
    pytest.importorskip("mkdocs", reason="the site needs the extra: pip install "
                        "'layerwise[docs]'")
    pytest.importorskip("material", reason="the site needs mkdocs-material ([docs])")
    mkdocs = shutil.which("mkdocs", path=str(Path(sys.executable).parent)) or "mkdocs"
    result = subprocess.run([mkdocs, "build", "--strict", "--site-dir", str(tmp_path)],
                            cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    for page in ["index.html", "tutorial/digits/index.html", "zh/tutorial/digits/index.html",
                 "reference/models/index.html"]:
        assert (tmp_path / page).is_file(), page
    digits = (tmp_path / "zh/tutorial/digits/index.html").read_text()
    assert "test accuracy" in digits and "data:image/png;base64" in digits

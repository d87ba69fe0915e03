"""What `make run` serves: the dev choice in data/capstone_adapter/recipe.json, or the user's."""

from __future__ import annotations

import json

import pytest
from scripts import load_script

from dl2llm.rag import DEFAULT_GENERATOR, default_generator, served_model
from dl2llm.runtime import UsageError


def _recipe(folder, served: str, beats: bool) -> None:
    folder.mkdir(exist_ok=True)
    (folder / "adapter.safetensors").write_bytes(b"")
    (folder / "recipe.json").write_text(json.dumps({"served": served, "tuned_beats_base": beats}))


def test_no_recipe_serves_the_evidence_answer(tmp_path):
    assert served_model(folder=tmp_path) == (DEFAULT_GENERATOR, None) == ("evidence", None)


def test_the_dev_choice_is_served_with_the_adapter_only_when_it_beat_the_base(tmp_path):
    _recipe(tmp_path, "evidence_llm_tuned", beats=True)
    adapter = tmp_path / "adapter.safetensors"
    assert served_model(folder=tmp_path) == ("llm", adapter)
    assert served_model(no_adapter=True, folder=tmp_path) == ("llm", None)
    assert served_model("previous", folder=tmp_path) == ("previous", None)  # not its task
    assert served_model("evidence", folder=tmp_path) == ("evidence", None)
    _recipe(tmp_path, "evidence", beats=False)
    assert served_model(folder=tmp_path) == ("evidence", None)
    assert served_model("llm", folder=tmp_path) == ("llm", None)  # the base model


def test_the_deployment_flags(tmp_path):
    script = load_script("capstone/deployment_script.py")
    args = script.parse([])
    assert args.generator == default_generator()
    assert script.parse(["--generator", "llm", "--no-adapter"]).adapter is None
    adapter = tmp_path / "a.safetensors"
    adapter.write_bytes(b"")
    assert script.parse(["--generator", "llm", "--adapter", str(adapter)]).adapter == adapter
    with pytest.raises(UsageError, match="contradict"):
        script.parse(["--adapter", str(adapter), "--no-adapter"])

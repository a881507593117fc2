"""The documentation: a short README, and no command in the docs that nothing runs.

Every command in a ``bash`` block of the README or a page under ``docs/`` is either

* run by a test or by CI: it is a key of :data:`RUN_BY`, which names the test (file and function,
  a fixture counts) or ``.ci/run``; the test file must define that function and hold the strings
  that show it runs the command (the config it passes, the subcommand), and ``.ci/run`` must hold
  the command itself. Tests run the commands with their own overrides (fewer epochs and batches,
  their own output folders, checkpoints of their own earlier runs in place of ``<last.ckpt>``); or
* in a block marked with what a test machine lacks, an HTML comment on the line right before the
  block: ``<!-- needs: data -->`` (a dataset, or a file such as downloaded weights),
  ``<!-- needs: gpu -->``, ``<!-- needs: network -->``, or several, comma-separated.

An unmarked command that no test runs fails :func:`test_every_docs_command_is_run_by_a_test_or_marked`;
an entry of :data:`RUN_BY` that no page holds any more fails :func:`test_the_registry_has_no_stale_commands`.
``mkdocs build --strict`` (CI) checks the links; these tests need no MkDocs.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
CI = ".ci/run"
NEEDS = {"data", "gpu", "network"}

T_CLI = "tests/test_cli.py"

# command (as the page writes it: continuation lines joined, comments dropped) → who runs it:
# (test file, test or fixture function, strings the test file must hold), or CI (the command is in .ci/run)
RUN_BY: dict[str, list[tuple[str, str, tuple[str, ...]]]] = {
    # the quickstart and the install commands: CI, verbatim
    'pip install -e ".[test]" -c .ci/constraints.txt && terratorch fit -c configs/specmae_seg.yaml': [(CI, "", ())],
    "pytest": [(CI, "", ())],
    'pip install -e ".[test]" -c .ci/constraints.txt': [(CI, "", ())],
    'pip install -e ".[test,bench]" -c .ci/constraints.txt': [(CI, "", ())],
    'pip install -e ".[docs]" -c .ci/constraints.txt': [(CI, "", ())],
    "mkdocs build --strict": [(CI, "", ())],
    ".ci/wheel": [(CI, "", ())],  # the sdist and the wheel built, checked, installed and run from a copy
    # pretraining
    "terratorch fit -c configs/specmae_pretrain_s2mae.yaml": [
        (T_CLI, "pretrained", ('"fit", "-c", "configs/specmae_pretrain_s2mae.yaml"',)),
    ],
    "terratorch fit -c configs/specmae_pretrain_s2mae_stage2.yaml "
    "--model.init_args.model_args.ckpt_path=outputs/pretrain_s2mae/lightning_logs/version_0/checkpoints/last.ckpt": [
        (
            T_CLI,
            "test_progressive_pretraining_stage2_continues_from_stage1",
            ('"fit", "-c", "configs/specmae_pretrain_s2mae_stage2.yaml"', "--model.init_args.model_args.ckpt_path="),
        ),
    ],
    "terratorch fit -c configs/specmae_pretrain_sigmae.yaml": [
        (T_CLI, "sigmae_pretrained", ('"fit", "-c", "configs/specmae_pretrain_sigmae.yaml"',)),
    ],
    "python examples/saliency_masking.py": [
        (
            "tests/test_saliency_pictures.py",
            "test_example_script_on_the_landsat_scene",
            ('"examples/saliency_masking.py"',),
        ),
    ],
    "terratorch fit -c configs/specmae_pretrain_mrs.yaml": [
        (
            T_CLI,
            "test_mrs_pretraining_then_hsi_pixel_classification_and_scene_map",
            ('"fit", "-c", "configs/specmae_pretrain_mrs.yaml"',),
        ),
    ],
    "terratorch fit -c configs/specmae_hsi_cls.yaml "
    "--model.init_args.model_args.backbone_ckpt_path=outputs/pretrain_mrs/lightning_logs/version_0/checkpoints/last.ckpt": [
        (
            T_CLI,
            "test_mrs_pretraining_then_hsi_pixel_classification_and_scene_map",
            ('"fit", "-c", "configs/specmae_hsi_cls.yaml"', "--model.init_args.model_args.backbone_ckpt_path="),
        ),
    ],
    "terratorch predict -c configs/specmae_hsi_cls.yaml --ckpt_path <last.ckpt> --predict_output_dir maps/": [
        (
            T_CLI,
            "test_mrs_pretraining_then_hsi_pixel_classification_and_scene_map",
            ('"predict", "-c", "configs/specmae_hsi_cls.yaml"', "--predict_output_dir="),
        ),
    ],
    "python examples/mrs_masking.py": [
        (T_CLI, "test_mrs_example_script_shows_less_leakage_than_random", ('"examples/mrs_masking.py"',)),
    ],
    # fine-tuning and the downstream tasks
    "terratorch fit -c configs/specmae_seg.yaml "
    "--model.init_args.model_args.backbone_ckpt_path=outputs/pretrain_s2mae/lightning_logs/version_0/checkpoints/last.ckpt": [
        (T_CLI, "seg_finetuned", ('"configs/specmae_seg.yaml"', "--model.init_args.model_args.backbone_ckpt_path=")),
    ],
    "terratorch predict -c configs/specmae_seg.yaml --ckpt_path <fine-tuned last.ckpt> --predict_output_dir maps/ "
    "--data.init_args.predict_data_root examples/data/olinda_l7/val/images": [
        (
            T_CLI,
            "test_segmentation_fine_tunes_from_the_pretraining_checkpoint",
            (
                '"predict",',
                '"configs/specmae_seg.yaml"',
                "--data.init_args.predict_data_root=",
                'ROOT / "examples/data/olinda_l7/val/images"',
            ),
        ),
    ],
    "terratorch fit -c configs/specmae_cd.yaml": [
        (T_CLI, "fit_once", ("configs/specmae_cd.yaml",)),
        (T_CLI, "test_change_detection_config_with_either_backbone_by_name", ()),
    ],
    "terratorch fit -c configs/specmae_objext.yaml": [
        (
            T_CLI,
            "test_object_extraction_config_with_either_backbone_by_name",
            ('"fit", "-c", "configs/specmae_objext.yaml"',),
        ),
    ],
    "terratorch fit -c configs/specmae_det.yaml": [
        (
            T_CLI,
            "test_object_detection_config_with_either_backbone_by_name",
            ('"fit", "-c", "configs/specmae_det.yaml"',),
        ),
    ],
    "terratorch fit -c configs/specmae_multilabel.yaml": [
        (
            T_CLI,
            "test_multilabel_config_with_either_backbone_by_name",
            ('"fit", "-c", "configs/specmae_multilabel.yaml"',),
        ),
    ],
    "terratorch predict -c configs/specmae_seg.yaml -c configs/predict_scene.yaml --ckpt_path <last.ckpt> "
    "--data.init_args.scene big_scene.tif --predict_output_dir maps/": [
        (
            T_CLI,
            "test_tiled_prediction_of_a_scene_larger_than_the_chips",
            (
                '"predict", "-c", "configs/specmae_seg.yaml", "-c", "configs/predict_scene.yaml"',
                "--data.init_args.scene=",
            ),
        ),
    ],
    "terratorch predict -c configs/specmae_cd.yaml -c configs/predict_scene_cd.yaml --ckpt_path <last.ckpt> "
    "--data.init_args.scene pair.tif --predict_output_dir maps/": [
        (
            T_CLI,
            "test_change_detection_of_a_scene_larger_than_the_chips",
            ('"predict", "-c", "configs/specmae_cd.yaml", "-c", "configs/predict_scene_cd.yaml"',),
        ),
    ],
    "terratorch predict -c configs/specmae_seg.yaml --ckpt_path <last.ckpt> --data.init_args.predict_data_root scenes/ "
    "--predict_output_dir maps/ --trainer.callbacks+=terratorch_specmae.callbacks.TiledPrediction "
    "--trainer.callbacks.init_args.crop=64 --trainer.callbacks.init_args.stride=48": [
        (
            T_CLI,
            "test_tiled_prediction_of_a_scene_larger_than_the_chips",
            (
                "--trainer.callbacks+=terratorch_specmae.callbacks.TiledPrediction",
                "--trainer.callbacks.init_args.crop=",
            ),
        ),
    ],
    "terratorch predict -c configs/specmae_embeddings.yaml": [
        (
            "tests/test_embeddings.py",
            "test_token_embeddings_are_the_encoder_on_each_chip_in_the_chips_georeference",
            ('"predict", "-c", str(CONFIG)', '"specmae_embeddings.yaml"'),
        ),
    ],
    # weights and deployment
    "specmae export outputs/pretrain_s2mae/lightning_logs/version_0/checkpoints/last.ckpt weights/s2mae-tiny-olinda "
    "--encoder-only --license apache-2.0 [--dataset my-org/olinda-landsat7] [--overwrite] "
    "[--push-to-hub my-org/s2mae-tiny-olinda]": [
        (
            T_CLI,
            "test_exported_folder_fine_tunes_locally_and_through_a_hub_endpoint",
            ('["export",', '"--encoder-only"'),
        ),
        ("tests/test_export.py", "test_export_writes_the_mae_and_its_encoder", ('"--license", "apache-2.0"',)),
        ("tests/test_atomic_writes.py", "", ('"--overwrite"]',)),
    ],
    "terratorch fit -c configs/specmae_seg.yaml --model.init_args.model_args.backbone_ckpt_path=weights/s2mae-tiny-olinda": [
        (
            T_CLI,
            "test_exported_folder_fine_tunes_locally_and_through_a_hub_endpoint",
            ('"configs/specmae_seg.yaml"', "--model.init_args.model_args.backbone_ckpt_path="),
        ),
    ],
    "specmae catalogue": [
        ("tests/test_cli_tool.py", "test_catalogue_lists_every_entry_and_download_caches_one", ('["catalogue"]',)),
    ],
    "specmae export-onnx outputs/seg/lightning_logs/version_0/checkpoints/last.ckpt seg.onnx": [
        ("tests/test_onnx_export.py", "test_onnx_export_matches_pytorch_at_two_batch_sizes", ('"export-onnx"',)),
    ],
    "specmae export-onnx <run>/checkpoints/last.ckpt cd.pt2 --format torch-export": [
        (
            "tests/test_onnx_export.py",
            "test_torch_export_matches_pytorch_at_two_batch_sizes",
            ('"export-onnx"', '"--format", "torch-export"'),
        ),
    ],
}


def _doc_files() -> list[Path]:
    return [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]


def _bash_blocks(path: Path):
    """(line number, marker or None, block text) of every ```bash block of a Markdown file."""
    text = path.read_text()
    for match in re.finditer(r"^(?:<!--(.*?)-->\n)?```bash\n(.*?)^```", text, re.MULTILINE | re.DOTALL):
        yield text[: match.start()].count("\n") + 1, match[1], match[2]


def _commands(block: str) -> list[str]:
    """The commands of a bash block: continuation lines joined, comments and blank lines dropped."""
    commands, pending = [], ""
    for line in block.splitlines():
        if line.lstrip().startswith("#") and not pending:
            continue
        line = re.sub(r"\s+#\s.*$", "", line).rstrip()
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        command = " ".join((pending + line).split())
        pending = ""
        if command:
            commands.append(command)
    return commands


def _needs(marker: str | None) -> set[str] | None:
    if marker is None:
        return None
    match = re.fullmatch(r"\s*needs:\s*([\w ,]+?)\s*", marker)
    return {word.strip() for word in match[1].split(",")} if match else None


def test_readme_is_short():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 250, f"README.md has {len(lines)} lines; move the detail to a page under docs/"


def test_readme_quickstart_is_what_ci_runs():
    """The README's quickstart block, line for line, is in .ci/run (which runs it verbatim)."""
    blocks = [block for _, _, block in _bash_blocks(ROOT / "README.md")]
    assert blocks, "the README has no bash block"
    ci_lines = {line.strip() for line in (ROOT / CI).read_text().splitlines()}
    for command in _commands(blocks[0]):
        assert command in ci_lines, f"the README's quickstart command {command!r} is not run verbatim by {CI}"


def test_markers_name_what_is_needed():
    for path in _doc_files():
        for line, marker, _ in _bash_blocks(path):
            if marker is not None:
                needs = _needs(marker)
                assert needs and needs <= NEEDS, (
                    f"{path.relative_to(ROOT)}:{line}: <!--{marker}--> is not needs: {NEEDS}"
                )


def test_every_docs_command_is_run_by_a_test_or_marked():
    unrun = []
    for path in _doc_files():
        for line, marker, block in _bash_blocks(path):
            if _needs(marker):
                continue
            unrun += [f"{path.relative_to(ROOT)}:{line}: {c}" for c in _commands(block) if c not in RUN_BY]
    assert not unrun, (
        "Commands in the docs that no test runs: add each to RUN_BY in tests/test_docs.py with the test that runs it, "
        "or mark its block with <!-- needs: data|gpu|network -->:\n" + "\n".join(unrun)
    )


def test_the_registry_has_no_stale_commands():
    documented = {
        command for path in _doc_files() for _, marker, block in _bash_blocks(path) if not _needs(marker)
        for command in _commands(block)
    }  # fmt: skip
    stale = sorted(set(RUN_BY) - documented)
    assert not stale, f"RUN_BY lists commands that no page shows unmarked any more: {stale}"


def _functions(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}


@pytest.mark.parametrize("command", sorted(RUN_BY))
def test_each_registered_command_is_run_where_the_registry_says(command):
    for where, function, strings in RUN_BY[command]:
        source = (ROOT / where).read_text()
        if where == CI:
            assert command in source, f"{CI} does not run {command!r}"
            continue
        if function:
            assert function in _functions(ROOT / where), f"{where} defines no {function}() (for {command!r})"
        for string in strings:
            assert string in source, f"{where} does not hold {string!r}: does it still run {command!r}?"


def _nav_files(nav) -> list[str]:
    files = []
    for entry in nav:
        value = next(iter(entry.values())) if isinstance(entry, dict) else entry
        files += _nav_files(value) if isinstance(value, list) else [value]
    return files


def test_every_page_is_in_the_nav_and_every_nav_entry_is_a_page():
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    nav = _nav_files(config["nav"])
    missing = [name for name in nav if not (DOCS / name).is_file()]
    assert not missing, f"mkdocs.yml names pages that do not exist: {missing}"
    pages = {str(path.relative_to(DOCS)) for path in DOCS.rglob("*.md")}
    assert pages <= set(nav), f"pages not in mkdocs.yml's nav: {sorted(pages - set(nav))}"


def test_api_reference_names_modules_that_exist():
    for page in sorted((DOCS / "api").glob("*.md")):
        for module in re.findall(r"^::: ([\w.]+)$", page.read_text(), re.MULTILINE):
            parts = module.split(".")
            path = ROOT.joinpath(*parts)
            assert path.with_suffix(".py").is_file() or (path / "__init__.py").is_file(), f"{page.name}: {module}"

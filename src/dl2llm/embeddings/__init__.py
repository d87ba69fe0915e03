"""Week 3: word embeddings, static and contextual.

- :mod:`~dl2llm.embeddings.corpus` -- the bundled English text as token lists.
- :mod:`~dl2llm.embeddings.vocab` -- vocabulary, frequent-word subsampling, noise distribution.
- :mod:`~dl2llm.embeddings.word2vec` -- skip-gram with negative sampling (Mikolov et al., 2013).
- :mod:`~dl2llm.embeddings.glove` -- GloVe (Pennington et al., 2014).
- :mod:`~dl2llm.embeddings.evaluation` -- analogies and WordSim-353, with coverage.
- :mod:`~dl2llm.embeddings.pretrained` -- Stanford's GloVe 6B 50d vectors, the reference row.
- :mod:`~dl2llm.embeddings.lesson` -- the notebook's steps: training, learning curve, king - queen.
- :mod:`~dl2llm.embeddings.contextual` -- MiniLM token and sentence vectors; polysemy.
- :mod:`~dl2llm.embeddings.projection` and :mod:`~dl2llm.embeddings.compare` -- plots, tables.

Trained static vectors are gensim ``KeyedVectors`` (``.vectors``,
``.index_to_key``, ``.most_similar``), whichever library trained them::

    from dl2llm.embeddings import load_corpus, train_word2vec
    vectors = train_word2vec(load_corpus("full"), epochs=5)
    vectors.most_similar("king")
"""

from dl2llm.embeddings.corpus import load_corpus
from dl2llm.embeddings.evaluation import evaluate
from dl2llm.embeddings.glove import train_glove
from dl2llm.embeddings.word2vec import train_gensim_word2vec, train_word2vec

__all__ = ["evaluate", "load_corpus", "train_gensim_word2vec", "train_glove", "train_word2vec"]

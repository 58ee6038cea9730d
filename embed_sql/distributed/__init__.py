"""Beyond one machine: the same embedding, k-NN join and drift check on a cluster engine.

Two layers, so a second engine is one new adapter:

- :mod:`.batches` (no engine import): the per-batch work, Arrow in, Arrow out. An
  :class:`~.batches.EmbedBatch` loads an encoder once and embeds a column of each batch
  with the very code of the local path (bit-identical vectors); a
  :class:`~.batches.KnnBatch` memory-maps a saved index once and joins each batch to it.
  Any engine that calls a class once per worker and then per batch (Ray Data, Dask's
  ``map_partitions``, Spark's ``mapInArrow``) can drive them.
- :mod:`.ray` (the ``ray`` extra; nothing else imports ray): Ray Data adapters, with
  defaults that work on small machines.
"""

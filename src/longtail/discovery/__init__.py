"""Finding the long tail: failure slices, similarity search, novelty, standing triggers.

Pure functions over arrays (no store): ``signals`` (confidence, energy, kNN distance to
the labeled set), ``slices`` (rank groups of the pool by error, confidence and
representation), ``search`` (FAISS over a vector reader, exact or IVF), ``triggers``
(the rule language). The use cases that wire them to a project live in
``longtail.engine.discovery``.
"""

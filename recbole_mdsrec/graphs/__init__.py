"""RGC: item-item graphs per modality.

``spec`` (the options), ``behavior`` (co-occurrence in the training sequences), ``knn`` and
``clustered`` (exact block-wise and approximate top-k search), ``build`` (one normalised
graph from features and behaviour), ``cache`` (on disk), ``modal`` (a dataset's graph of one
modality), ``propagate`` (LightGCN smoothing over a graph), ``signal`` (how much next-item
signal a graph carries, before training).
"""

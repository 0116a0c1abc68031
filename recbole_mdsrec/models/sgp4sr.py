r"""SGP4SR: Separated-Modality Guided User Preference Learning for Multimodal Sequential
Recommendation (C. Li, Z. Guo, G. Li et al., AAAI 2026), built from MDSRec's parts.

The model of the authors' public code (``changhongli1/SGP4SR``, read in ``docs/sgp4sr.md``),
expressed as MDSRec's switches at the values of ``properties/model/SGP4SR.yaml``:

- item graphs per modality: modal top-25 ∩ behaviour top-3 (inverse-distance co-occurrence
  over whole training sequences), filled to 10, each neighbour weighing 1/10, directed;
  ``H^m = Â^m E`` — the ID embeddings averaged over the graph (features never enter the
  forward pass);
- per modality, k-means interest centres of the raw features (``Z⁰ = S^m H^m``) attending to
  the sequence in every layer, each position softly assigned to them (Gumbel in training);
- an ID branch over ``C̃E`` (row-L2-normalised co-occurrence), all branches through one
  shared 2-layer Transformer;
- ``ŷ = ⟨LN(0.9 o_text + 0.1 o_image + 0.6 o_id), E⟩ + 0.9 ⟨u_text, H^text⟩ + 0.1 ⟨u_image, H^image⟩``,
  trained by the three matching cross-entropies.

It differs from MDSRec's authors' reading (``--variant=authors``) in the one encoder shared by
every branch and in the reference code's sizes (hidden 300, 4 heads, ReLU). The pitfalls of
the reference code that this implementation does not carry over are listed in
``docs/sgp4sr.md`` §7; what the sequence layers differ in is said in
``models/interest_centres.py``.
"""

from __future__ import annotations

from recbole_mdsrec.models.mdsrec import MDSRec


class SGP4SR(MDSRec):
    """MDSRec's layers with SGP4SR's switches (``properties/model/SGP4SR.yaml``)."""
